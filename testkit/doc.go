// Package testkit runs Walrus clusters under a deterministic scheduler: real
// nodes (actors, FSM, WAL, hashicorp/raft) in one process, inside a
// testing/synctest bubble (virtual time), on a simulated network
// (testkit/simnet) and simulated disks (testkit/simfs), with every random
// choice drawn from one seed.
//
// Run(t, Options{Seed: s}) draws a Schedule from the seed (client
// operations and faults), runs it against a Cluster with a Nemesis, heals,
// reads everything back and returns a Result whose Verdict is the checker's
// (Check): no acknowledged write lost, nothing read that was not written,
// offsets in real-time order (porcupine), the shared cursor's at-least-once
// window, one writer per segment epoch, replicas equal. Scenario scripts
// (testdata/scenarios, datadriven) drive a Cluster step by step. A test of
// your own builds a Cluster inside synctest.Test after Seed, and ends it
// with Shutdown.
//
// docs/testing.md explains how to replay a seed, read a trace, write a
// scenario, and how deterministic runs are (measured).
package testkit
