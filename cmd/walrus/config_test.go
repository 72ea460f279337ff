package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/seam"
	"github.com/walrus-go/walrus/wal"
)

// TestConfigRefusesBadValues: a flag value the node cannot run with is a
// usage error naming the flag (runNode exits 2), never a silent default.
func TestConfigRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--node-id", "0"}, "--node-id"},
		{[]string{"--client-port", "-5"}, "--client-port"},
		{[]string{"--raft-port", "70000"}, "--raft-port"},
		{[]string{"--http-port", "-2"}, "--http-port"},
		{[]string{"--http-port", "-1"}, "--http-port"},
		{[]string{"--replication-factor", "0"}, "--replication-factor"},
		{[]string{"--replication-factor", "-1"}, "--replication-factor"},
		{[]string{"--replication-factor", "256"}, "--replication-factor"},
		{[]string{"--lease", "0s"}, "--lease"},
		{[]string{"--failure-timeout", "-1s"}, "--failure-timeout"},
		{[]string{"--raft-heartbeat", "0s"}, "--raft-heartbeat"},
		{[]string{"--client-idle-timeout", "0s"}, "--client-idle-timeout"},
		{[]string{"--client-idle-timeout", "-1m"}, "--client-idle-timeout"},
		{[]string{"--max-frame", "1000"}, "--max-frame"},
		{[]string{"--max-frame", "65560"}, "--max-frame"},    // a reference PUT's entry would not be readable
		{[]string{"--max-frame", "33554433"}, "--max-frame"}, // a forwarded request must fit a peer frame
		{[]string{"--fsync", "sometimes"}, "--fsync"},
		{[]string{"--wal-prealloc", "-1"}, "--wal-prealloc"},
		{[]string{"--wal-prealloc", "67108865"}, "--wal-prealloc"},
		{[]string{"--wal-drop-behind", "-1"}, "--wal-drop-behind"},
		{[]string{"--trailing-replica-wait", "-1ms"}, "--trailing-replica-wait"},
		{[]string{"--disk-stall-exit", "-1s"}, "--disk-stall-exit"},
	} {
		f := newNodeFlags()
		if err := f.fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		_, closer, err := f.config()
		closer.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
	// the documented defaults and special values still pass
	for _, args := range [][]string{nil, {"--http-port", "0"}, {"--client-port", "0"}, {"--replication-factor", "1"}, {"--wal-prealloc", "0"}, {"--wal-prealloc", "67108864"},
		{"--wal-drop-behind", "0"}, {"--wal-drop-behind", "1048576"},
		{"--trailing-replica-wait", "0"}, {"--trailing-replica-wait", "20ms"}} {
		f := newNodeFlags()
		if err := f.fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		_, closer, err := f.config()
		closer.Close()
		if err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// --trailing-replica-wait 0 must switch holding off, not fall back to the
// config's default (whose zero means "default").
func TestTrailingReplicaWaitFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, actors.DefaultTrailingReplicaWait},
		{[]string{"--trailing-replica-wait", "0"}, -1},
		{[]string{"--trailing-replica-wait", "20ms"}, 20 * time.Millisecond},
	} {
		if cfg := configOf(t, tc.args); cfg.TrailingReplicaWait != tc.want {
			t.Errorf("%v: TrailingReplicaWait %v, want %v", tc.args, cfg.TrailingReplicaWait, tc.want)
		}
	}
}

// --wal-drop-behind reaches the node's config; off (0, keep all) unless
// given.
func TestWALDropBehindFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{nil, 0},
		{[]string{"--wal-drop-behind", "0"}, 0},
		{[]string{"--wal-drop-behind", "8388608"}, 8 << 20},
	} {
		if cfg := configOf(t, tc.args); cfg.WALDropBehind != tc.want {
			t.Errorf("%v: WALDropBehind %d, want %d", tc.args, cfg.WALDropBehind, tc.want)
		}
	}
}

// --wal-set-aside-corrupt reaches the node's config; off by default.
func TestWALSetAsideCorruptFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--wal-set-aside-corrupt"}, true},
	} {
		if cfg := configOf(t, tc.args); cfg.WALSetAsideCorrupt != tc.want {
			t.Errorf("%v: WALSetAsideCorrupt %v, want %v", tc.args, cfg.WALSetAsideCorrupt, tc.want)
		}
	}
}

// configOf is the node configuration the flags args give; it fails the
// test on a parse or config error.
func configOf(t *testing.T, args []string) actors.Config {
	t.Helper()
	f := newNodeFlags()
	if err := f.fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, closer, err := f.config()
	closer.Close()
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return cfg
}

// --plain-syscalls reaches the network and the WAL's file system; without
// it the network is left to the node's default and the file system makes
// raw calls.
func TestPlainSyscallsFlag(t *testing.T) {
	cfg := configOf(t, []string{"--disk-stall-exit", "0"})
	if cfg.Network != nil || cfg.FS != wal.OSFS() || cfg.DiskWatch != nil {
		t.Errorf("defaults: Network %#v, FS %#v, DiskWatch %p; want the node's network, raw calls and no watch", cfg.Network, cfg.FS, cfg.DiskWatch)
	}
	cfg = configOf(t, []string{"--plain-syscalls", "--disk-stall-exit", "0"})
	if cfg.Network != (seam.TCPNetwork{PlainSyscalls: true}) {
		t.Errorf("--plain-syscalls: Network %#v", cfg.Network)
	}
	if cfg.FS != wal.OSFSWith(wal.OSFSOptions{PlainSyscalls: true}) {
		t.Errorf("--plain-syscalls: FS %#v", cfg.FS)
	}
}

// --disk-stall-exit (30 s unless set; 0 turns it off) has the WAL's file
// system watched, whichever calls it makes, and the raft log by the same
// watch.
func TestDiskStallExitFlag(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		limit time.Duration
		base  wal.FS
	}{
		{nil, 30 * time.Second, wal.OSFS()},
		{[]string{"--disk-stall-exit", "2s", "--plain-syscalls"}, 2 * time.Second, wal.OSFSWith(wal.OSFSOptions{PlainSyscalls: true})},
	} {
		f := newNodeFlags()
		if err := f.fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg, closer, err := f.config()
		closer.Close()
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if f.diskStallExit != tc.limit || f.diskWatch == nil || cfg.FS != wal.Watched(tc.base, f.diskWatch) {
			t.Errorf("%v: limit %v, watch %p, FS %#v; want %v and the base file system watched", tc.args, f.diskStallExit, f.diskWatch, cfg.FS, tc.limit)
		}
		if cfg.DiskWatch != f.diskWatch {
			t.Errorf("%v: the raft log is watched by %p, the WAL by %p: want one watch for both", tc.args, cfg.DiskWatch, f.diskWatch)
		}
	}
}

// --http-port's default depends on --node-id: 8080+id unless given (0
// turns it off), and --help shows no made-up default for it.
func TestHTTPPortDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--node-id", "3"}, "127.0.0.1:8083"},
		{[]string{"--node-id", "3", "--http-port", "9000"}, "127.0.0.1:9000"},
		{[]string{"--node-id", "3", "--http-port", "0"}, ""},
	} {
		f := newNodeFlags()
		if err := f.fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg, closer, err := f.config()
		closer.Close()
		if err != nil || cfg.HTTPAddr != tc.want {
			t.Errorf("%v: HTTPAddr %q, %v; want %q", tc.args, cfg.HTTPAddr, err, tc.want)
		}
	}
	var help strings.Builder
	f := newNodeFlags()
	f.fs.SetOutput(&help)
	f.fs.PrintDefaults()
	if strings.Contains(help.String(), "(default -1)") || !strings.Contains(help.String(), "0 disables it (default 8080+node-id)") {
		t.Errorf("--help:\n%s", help.String())
	}
}

// walrus --help names both ways to run it: one node, and walrus dev.
func TestUsageNamesDev(t *testing.T) {
	var help strings.Builder
	f := newNodeFlags()
	f.fs.SetOutput(&help)
	f.fs.Usage()
	if !strings.Contains(help.String(), "walrus dev [flags]") || !strings.Contains(help.String(), "-node-id") {
		t.Errorf("usage:\n%s", help.String())
	}
}

// walrus dev refuses a --port-offset that moves a port out of 1..65535
// (exit 2) before it creates its data folder or starts a node.
func TestDevRefusesPortOffsetOutOfRange(t *testing.T) {
	for _, offset := range []string{"-6001", "56445"} { // node 1's raft port to 0; node 3's client port to 65536
		dir := filepath.Join(t.TempDir(), "dev")
		if code := runDev([]string{"--data-dir", dir, "--port-offset", offset}); code != 2 {
			t.Errorf("walrus dev --port-offset %s: exit %d, want 2", offset, code)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("walrus dev --port-offset %s made its data folder (%v)", offset, err)
		}
	}
}
