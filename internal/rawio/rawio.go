// Package rawio reads and writes TCP connections with raw system calls:
// the Go scheduler is not told about them (no entersyscall/exitsyscall).
//
// Why: when a goroutine enters an ordinary system call while the runtime's
// monitor thread (sysmon) sleeps because the process was idle, the call
// wakes it, and sysmon then checks every 20 µs for a while; a lightly
// loaded node goes idle between messages, so every message restarted that
// polling, and on a paravirtualized guest each wake-up of a thread costs
// tens of microseconds. The sockets here are non-blocking (Go's netpoller
// waits for readiness), so a read or write never blocks and keeping the P
// through it is safe; together with the WAL's raw writes and syncs
// (package wal, sync_linux.go) this took a quarter off the cluster's CPU per
// message at low load (BENCHMARKS.md, "Raw system calls").
//
// Only *net.TCPConn is wrapped; anything else (the testkit's simulated
// network, TLS, a pipe) passes through unchanged, as it does on platforms
// other than Linux.
package rawio

import "net"

// Listener returns ln with Accept wrapping each connection in Conn.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Conn(c), nil
}
