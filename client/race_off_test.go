//go:build !race

package client

// raceEnabled: the tests run under the race detector.
const raceEnabled = false
