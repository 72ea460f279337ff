// Package testkit runs Walrus clusters under a deterministic scheduler:
// simulated network, disk and clock behind the seams, a seeded random source,
// a nemesis that injects faults, and a checker over each run's history.
package testkit
