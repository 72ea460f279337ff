// Package e2e holds end-to-end tests: real walrus node processes on
// loopback, driven over the client protocol byte for byte (COMPAT.md,
// docs/protocol.md). It has no code of its own; everything is in _test files.
//
// Run it alone, one package at a time (the suite starts many processes and
// the machines we share have two cores):
//
//	go test -p 1 -count=1 ./e2e/
//	go test ./e2e/ -run TestRollover -v    // one scenario; node logs on failure
//
// What the harness does:
//
//   - TestMain builds cmd/walrus once into a temporary folder (E2E_RACE=1
//     builds it with -race), raises RLIMIT_NOFILE, and arms a watchdog that
//     kills every node shortly before -timeout would panic the test binary.
//   - startCluster(t, n, opts) starts n processes on free loopback ports:
//     node 1 bootstraps, the others --join it; it returns once node 1 sees
//     all n as voters and every node knows a leader and has applied what
//     that leader committed.
//   - Every node runs in its own process group with a parent-death signal,
//     and is killed by t.Cleanup. A node that died on its own, or whose log
//     shows a panic or (E2E_RACE=1) a data race, fails the test. When a test
//     fails, the last 50 lines of each
//     node's log (E2E_LOG_LINES changes the count; 0 prints all) are printed.
//     E2E_LOGS=1 prints them for passing tests too; E2E_LOG_LEVEL=debug
//     passes --log-level debug to every node.
//
// -short skips the whole package.
package e2e
