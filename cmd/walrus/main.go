// Command walrus runs one Walrus node, or (walrus dev) a local 3-node
// cluster for trying things out. Flags and environment variables follow the
// reference implementation (docs/configuration.md lists every one).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/seam"
	"github.com/walrus-go/walrus/wal"
	"github.com/walrus-go/walrus/wire"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "dev" {
		os.Exit(runDev(os.Args[2:]))
	}
	os.Exit(runNode(os.Args[1:]))
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// optionalInt is an int flag that knows whether it was given, for a
// default that depends on another flag and cannot be a value of its own
// (--http-port: 0 means off). Unset, it prints as "": --help shows no
// "(default ...)".
type optionalInt struct {
	v   int
	set bool
}

func (o *optionalInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.Itoa(o.v)
}

func (o *optionalInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not an integer")
	}
	o.v, o.set = n, true
	return nil
}

// nodeFlags are the flags of one node.
type nodeFlags struct {
	fs                                *flag.FlagSet
	nodeID                            uint64
	dataDir                           string
	clientHost                        string
	clientPort                        int
	raftHost, raftAdvertiseHost       string
	clientAdvertiseHost               string
	httpAdvertiseHost                 string
	raftPort                          int
	httpHost                          string
	httpPort                          optionalInt
	join                              multiFlag
	initialPeers                      multiFlag
	logFile, logFormat, logLevel      string
	rf                                int
	syncMode                          string
	maxFrame                          int
	walPrealloc                       int64
	walDropBehind                     int64
	walSetAsideCorrupt                bool
	plainSyscalls                     bool
	diskStallExit                     time.Duration
	diskWatch                         *wal.IOWatch // counts the WAL's and the raft log's disk calls when diskStallExit is set (config)
	leaseWindow, failureTimeout       time.Duration
	raftHeartbeat                     time.Duration
	idleTimeout                       time.Duration
	ackBeforeQuorumPlantedBugDoNotUse bool
	trailingWait                      time.Duration
}

func newNodeFlags() *nodeFlags {
	f := &nodeFlags{fs: flag.NewFlagSet("walrus", flag.ContinueOnError)}
	fs := f.fs
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, `usage: walrus [flags]       run one node (docs/configuration.md)
       walrus dev [flags]   run a local cluster of child nodes (walrus dev --help)

flags of a node:
`)
		fs.PrintDefaults()
	}
	fs.Uint64Var(&f.nodeID, "node-id", 1, "this node's id (a small positive integer)")
	fs.StringVar(&f.dataDir, "data-dir", "./data", "state lives under <data-dir>/node_<id>/")
	fs.StringVar(&f.clientHost, "client-host", "127.0.0.1", "client protocol listen host")
	fs.IntVar(&f.clientPort, "client-port", 0, "client protocol port (default 9090+node-id)")
	fs.IntVar(&f.clientPort, "port", 0, "alias of --client-port")
	fs.StringVar(&f.raftHost, "raft-host", "127.0.0.1", "internal port listen host (raft + node-to-node RPC)")
	fs.IntVar(&f.raftPort, "raft-port", 0, "internal port (default 6000+node-id)")
	fs.StringVar(&f.raftAdvertiseHost, "raft-advertise-host", "", "host other nodes reach the internal port at (default --raft-host)")
	fs.StringVar(&f.clientAdvertiseHost, "client-advertise-host", "", "host clients reach the client port at, as NODES and LEADER report it (default --client-host)")
	fs.StringVar(&f.httpHost, "http-host", "127.0.0.1", "metrics/health listen host")
	fs.StringVar(&f.httpAdvertiseHost, "http-advertise-host", "", "host the metrics port is reached at, as NODES reports it (default --http-host)")
	fs.Var(&f.httpPort, "http-port", "metrics/health `port`: /metrics, /healthz, /readyz; 0 disables it (default 8080+node-id)")
	fs.Var(&f.join, "join", "raft address of an existing member to join through (repeatable)")
	fs.Var(&f.initialPeers, "initial-peer", "id@raft-address of another founding member (repeatable)")
	fs.StringVar(&f.logFile, "log-file", "", "write logs here instead of stderr")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&f.rf, "replication-factor", 3, "default replication factor of new topics (capped by live nodes)")
	fs.StringVar(&f.syncMode, "fsync", "always", "when writes reach disk before acknowledgement: always | interval:<duration> | never")
	fs.IntVar(&f.maxFrame, "max-frame", 1<<20, "largest client request and reply in bytes (65561 to 33554432); entries may be 30 bytes shorter")
	fs.Int64Var(&f.walDropBehind, "wal-drop-behind", 0, "bytes behind each segment's synced end kept in the page cache; older bytes are evicted (0: keep all)")
	fs.Int64Var(&f.walPrealloc, "wal-prealloc", wal.DefaultPrealloc, "bytes of zeros a segment file grows by ahead of its records (0: append)")
	fs.BoolVar(&f.plainSyscalls, "plain-syscalls", false, "issue socket reads and writes and WAL writes and syncs as ordinary system calls instead of raw ones (docs/configuration.md)")
	fs.DurationVar(&f.diskStallExit, "disk-stall-exit", 30*time.Second, "exit when the node's disk calls (WAL and raft log) have made no progress for this long, so that the cluster fails the node over (0: never)")
	fs.BoolVar(&f.walSetAsideCorrupt, "wal-set-aside-corrupt", false, "at start, rename a corrupt sealed segment file aside and copy it back from the other replicas, instead of refusing the whole disk")
	fs.DurationVar(&f.trailingWait, "trailing-replica-wait", actors.DefaultTrailingReplicaWait,
		"a follower outside the write quorum gets writes in batches at most this late (0: every write to every follower at once)")
	fs.DurationVar(&f.leaseWindow, "lease", time.Second, "write lease window")
	fs.DurationVar(&f.failureTimeout, "failure-timeout", 2*time.Second, "silence after which a node's segments fail over (must exceed --lease)")
	fs.DurationVar(&f.raftHeartbeat, "raft-heartbeat", 500*time.Millisecond, "raft heartbeat and election timeout")
	fs.DurationVar(&f.idleTimeout, "client-idle-timeout", 5*time.Minute, "close client connections idle (or stalled mid-frame) this long")
	fs.BoolVar(&f.ackBeforeQuorumPlantedBugDoNotUse, "planted-bug-ack-before-quorum", false, "TESTING ONLY: acknowledge writes before a quorum holds them")
	return f
}

func (f *nodeFlags) config() (actors.Config, io.Closer, error) {
	var closer io.Closer = io.NopCloser(nil)
	if f.nodeID == 0 {
		return actors.Config{}, closer, errors.New("--node-id must be a positive integer")
	}
	if f.clientPort == 0 {
		f.clientPort = 9090 + int(f.nodeID)
	}
	if f.raftPort == 0 {
		f.raftPort = 6000 + int(f.nodeID)
	}
	httpPort := f.httpPort.v
	if !f.httpPort.set {
		httpPort = 8080 + int(f.nodeID)
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"--client-port", f.clientPort}, {"--raft-port", f.raftPort}, {"--http-port", httpPort}} {
		if p.v < 0 || p.v > 65535 {
			return actors.Config{}, closer, fmt.Errorf("%s %d is not a port (0..65535)", p.name, p.v)
		}
	}
	if f.rf < 1 || f.rf > wire.MaxRF {
		return actors.Config{}, closer, fmt.Errorf("--replication-factor %d: want 1..%d", f.rf, wire.MaxRF)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--lease", f.leaseWindow}, {"--failure-timeout", f.failureTimeout}, {"--raft-heartbeat", f.raftHeartbeat},
		{"--client-idle-timeout", f.idleTimeout}} {
		if d.v <= 0 {
			return actors.Config{}, closer, fmt.Errorf("%s %v: must be positive", d.name, d.v)
		}
	}
	if f.maxFrame < wire.MinMaxFrame {
		return actors.Config{}, closer, fmt.Errorf("--max-frame %d is below %d: the reference's 65536-byte requests must fit, and their entries' READ replies too",
			f.maxFrame, wire.MinMaxFrame)
	}
	if f.maxFrame > wire.MaxMaxFrame {
		return actors.Config{}, closer, fmt.Errorf("--max-frame %d is above %d: a forwarded request must fit one node-to-node frame",
			f.maxFrame, wire.MaxMaxFrame)
	}
	logger, c, err := buildLogger(f.logFile, f.logFormat, f.logLevel)
	if err != nil {
		return actors.Config{}, closer, err
	}
	closer = c
	cfg := actors.Config{
		NodeID:            f.nodeID,
		DataDir:           f.dataDir,
		ClientAddr:        net.JoinHostPort(f.clientHost, strconv.Itoa(f.clientPort)),
		RaftAddr:          net.JoinHostPort(f.raftHost, strconv.Itoa(f.raftPort)),
		Join:              f.join,
		InitialPeers:      f.initialPeers,
		ReplicationFactor: f.rf,
		MaxFrame:          f.maxFrame,
		LeaseWindow:       f.leaseWindow,
		FailureTimeout:    f.failureTimeout,
		RaftHeartbeat:     f.raftHeartbeat,
		ClientIdleTimeout: f.idleTimeout,
		Logger:            logger,
		AckBeforeQuorum:   f.ackBeforeQuorumPlantedBugDoNotUse,
	}
	if f.raftAdvertiseHost != "" {
		cfg.AdvertiseRaftAddr = net.JoinHostPort(f.raftAdvertiseHost, strconv.Itoa(f.raftPort))
	}
	if f.clientAdvertiseHost != "" {
		cfg.AdvertiseClientAddr = net.JoinHostPort(f.clientAdvertiseHost, strconv.Itoa(f.clientPort))
	}
	if f.httpAdvertiseHost != "" && httpPort > 0 {
		cfg.AdvertiseHTTPAddr = net.JoinHostPort(f.httpAdvertiseHost, strconv.Itoa(httpPort))
	}
	if httpPort > 0 {
		cfg.HTTPAddr = net.JoinHostPort(f.httpHost, strconv.Itoa(httpPort))
	}
	if cfg.Sync, cfg.SyncInterval, err = parseSync(f.syncMode); err != nil {
		return cfg, closer, err
	}
	if f.walPrealloc < 0 || f.walPrealloc > wal.MaxPrealloc {
		return cfg, closer, fmt.Errorf("--wal-prealloc %d: must be 0 (append) or a number of bytes up to %d", f.walPrealloc, wal.MaxPrealloc)
	}
	cfg.WALPrealloc = f.walPrealloc
	if f.walDropBehind < 0 {
		return cfg, closer, fmt.Errorf("--wal-drop-behind %d: must be 0 (keep all) or a number of bytes", f.walDropBehind)
	}
	cfg.WALDropBehind = f.walDropBehind
	cfg.WALSetAsideCorrupt = f.walSetAsideCorrupt
	cfg.FS = wal.OSFSWith(wal.OSFSOptions{PlainSyscalls: f.plainSyscalls})
	if f.plainSyscalls {
		cfg.Network = seam.TCPNetwork{PlainSyscalls: true}
	}
	switch {
	case f.diskStallExit < 0:
		return cfg, closer, fmt.Errorf("--disk-stall-exit %v: must be 0 (never) or positive", f.diskStallExit)
	case f.diskStallExit > 0:
		f.diskWatch = &wal.IOWatch{}
		cfg.FS = wal.Watched(cfg.FS, f.diskWatch)
		cfg.DiskWatch = f.diskWatch
	}
	if f.trailingWait < 0 {
		return cfg, closer, fmt.Errorf("--trailing-replica-wait %v: must be 0 (off) or positive", f.trailingWait)
	}
	cfg.TrailingReplicaWait = actors.TrailingReplicaWaitOf(f.trailingWait)
	if cfg.MaxSegmentEntries, err = envUint("WALRUS_MAX_SEGMENT_ENTRIES", 1_000_000, 1); err != nil {
		return cfg, closer, err
	}
	ms, err := envUint("WALRUS_MONITOR_CHECK_MS", 10_000, 10)
	if err != nil {
		return cfg, closer, err
	}
	cfg.MonitorInterval = time.Duration(ms) * time.Millisecond
	return cfg, closer, nil
}

// parseSync reads --fsync.
func parseSync(s string) (wal.SyncMode, time.Duration, error) {
	switch {
	case s == "always" || s == "batch":
		return wal.SyncEveryBatch, 0, nil
	case s == "never":
		return wal.SyncNever, 0, nil
	case strings.HasPrefix(s, "interval:"):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "interval:"))
		if err != nil || d <= 0 {
			return 0, 0, fmt.Errorf("--fsync %q: want interval:<positive duration>, e.g. interval:10ms", s)
		}
		return wal.SyncInterval, d, nil
	}
	return 0, 0, fmt.Errorf("--fsync %q: want always, interval:<duration> or never", s)
}

// envUint reads a numeric environment variable; values below min are raised
// to min (as the reference does), garbage is an error.
func envUint(name string, def, min uint64) (uint64, error) {
	v, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not a non-negative integer", name, v)
	}
	if n < min {
		n = min
	}
	return n, nil
}

func buildLogger(file, format, level string) (*slog.Logger, io.Closer, error) {
	var w io.Writer = os.Stderr
	var c io.Closer = io.NopCloser(nil)
	if file != "" {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, c, fmt.Errorf("--log-file: %w", err)
		}
		w, c = f, f
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, c, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), c, nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), c, nil
	}
	return nil, c, fmt.Errorf("--log-format %q: want text or json", format)
}

func runNode(args []string) int {
	f := newNodeFlags()
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "walrus: unexpected argument %q (subcommands: dev)\n", f.fs.Arg(0))
		return 2
	}
	cfg, closer, err := f.config()
	defer closer.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "walrus:", err)
		return 2
	}
	if f.diskWatch != nil {
		// from before Start: opening the WAL reads and writes the disk too
		go watchDisk(f.diskWatch, cfg.FS, filepath.Join(cfg.NodeDir(), "disk-probe"), f.diskStallExit, cfg.Logger)
	}
	n, err := actors.Start(cfg)
	if err != nil {
		cfg.Logger.Error("start failed", "err", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	cfg.Logger.Info("stopping", "signal", s.String())
	n.Stop()
	return 0
}

// stallLooks: watchDisk looks at the disk's progress this many times per
// --disk-stall-exit.
const stallLooks = 10

// watchDisk ends the process (exit status 3) once the node's disk calls
// (the WAL's and raft's log's) have been in progress without one
// finishing for about limit (wal.StallCounter): a disk that hangs. A node
// left running on it would go on answering its peers, so nothing would
// fail over, while the writes to the segments it leads wait; stopped, it
// is failed over like any dead node (docs/operations.md, "A disk that
// hangs"). With raw system calls (the default) the garbage collector may
// stop the process first.
//
// A node that writes nothing would never have a call stuck, so when no
// call has finished for half the limit, watchDisk writes and syncs a
// small file in the node's folder (probe, through fsys: the watched file
// system), one probe at a time.
func watchDisk(w *wal.IOWatch, fsys wal.FS, probe string, limit time.Duration, log *slog.Logger) {
	t := time.NewTicker(limit / stallLooks)
	defer t.Stop()
	var c wal.StallCounter
	var probing atomic.Bool
	for range t.C {
		started, finished := w.Progress()
		if c.Look(started, finished) >= stallLooks {
			log.Error("disk stalled: no write or sync has finished for the --disk-stall-exit; exiting so that the cluster fails this node over",
				"disk_stall_exit", limit, "calls_in_progress", started-finished)
			os.Exit(3)
		}
		if c.Quiet() >= stallLooks/2 && probing.CompareAndSwap(false, true) {
			go func() {
				defer probing.Store(false)
				if err := probeDisk(fsys, probe); err != nil {
					log.Warn("disk probe failed", "file", probe, "err", err)
				}
			}()
		}
	}
}

// probeDisk writes and syncs a few bytes to name: a disk call that
// finishes unless the disk hangs.
func probeDisk(fsys wal.FS, name string) error {
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte("walrus disk probe\n"), 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
