// Command walrus-bench is a load generator for a Walrus cluster: N
// producers and M consumers over T topics, closed loop (as fast as the
// cluster answers) or open loop at a fixed rate, with latency percentiles
// from an HDR histogram.
//
//	walrus-bench --register --producers 16 --size 128 --duration 10s
//	walrus-bench --register --producers 16 --batch 100 --consumers 4 --duration 10s
//	walrus-bench --producers 0 --consumers 4 --consume read --read-max 1000 --from start
//	walrus-bench --register --producers 16 --rate 20000 --duration 10s --json
//
// Producers are spread over the --addr nodes (producer i talks to node
// i mod len), each on its own connection with up to --inflight pipelined
// requests. With --rate the requests are scheduled on a fixed timeline and
// latency is measured from the scheduled send time, so a stalled cluster
// shows up as latency instead of as fewer samples (no coordinated
// omission). Latency is per request: a PUT's, or a whole MPUT batch's.
// Producers connect before the clock starts, so dials are not timed; a
// dial during the run (after a failure, or to follow a leader that moved
// under --route leader) is counted in the report's redials.
//
// A progress line goes to stderr every second; the report goes to stdout,
// as text or (--json) as one JSON object. The exit status is 1 when a
// message was not acknowledged or a consumer did not read to the end, 2 on
// bad flags or when the cluster could not be set up.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }

func runMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("walrus-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	addrs := fs.String("addr", "127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093", "comma-separated client addresses of the nodes; workers are spread over them")
	fs.IntVar(&cfg.Producers, "producers", 16, "producer connections")
	fs.IntVar(&cfg.Consumers, "consumers", 0, "consumer connections")
	fs.IntVar(&cfg.Topics, "topics", 1, "topics; producer/consumer i uses topic i mod topics")
	fs.StringVar(&cfg.Prefix, "topic", "bench", "topic name prefix: topics are <topic>-0, <topic>-1, ...")
	fs.IntVar(&cfg.Size, "size", 128, "payload bytes per message")
	fs.IntVar(&cfg.Batch, "batch", 1, "messages per request: 1 sends PUT, more sends MPUT")
	fs.IntVar(&cfg.Inflight, "inflight", 1, "pipelined requests in flight per producer connection")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long producers send (consumers alone: the longest they read); 0 with --messages")
	fs.Int64Var(&cfg.Messages, "messages", 0, "total messages to produce (0: no limit, stop at --duration)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "total msgs/s on a fixed schedule (open loop); 0 = as fast as possible (closed loop)")
	fs.StringVar(&cfg.Consume, "consume", "read", "how consumers read: read (READ <topic> <offset> <max>, non-destructive) or get (GET, the shared cursor)")
	fs.IntVar(&cfg.ReadMax, "read-max", 1000, "entries per READ request")
	fs.StringVar(&cfg.From, "from", "", "first offset READ consumers read: start, end (the high-water mark when the run starts) or a number; default end with producers, start without")
	fs.StringVar(&cfg.Route, "route", "any", "where producers write: any (producer i through node i mod n, which forwards to the segment leader) or leader (to the topic's segment leader, asked with LEADER before the run and again every 5 s beside the load, as the Go client does; a producer reconnects when the answer changes)")
	fs.BoolVar(&cfg.Register, "register", false, "REGISTER the topics before starting")
	fs.BoolVar(&cfg.PlainSyscalls, "plain-syscalls", false, "read and write the producers' and consumers' sockets with ordinary system calls instead of raw ones (as walrus --plain-syscalls)")
	fs.IntVar(&cfg.RF, "rf", 0, "replication factor for --register (0: the cluster's default)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 30*time.Second, "how long to wait for outstanding replies and for consumers to catch up after producers stop")
	fs.DurationVar(&cfg.Settle, "settle", time.Second, "after producers finish, how long consumers keep polling reads that answer EMPTY before everything acknowledged was read")
	jsonOut := fs.Bool("json", false, "print the report as one JSON object")
	jsonFile := fs.String("json-file", "", "also write the JSON report to this file (for scripts comparing runs)")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	slowFile := fs.String("slow-log", "", "write a line per acknowledged write slower than --slow-over to this file: scheduled send (µs since the start), latency (ms), producer")
	fs.DurationVar(&cfg.SlowOver, "slow-over", 5*time.Millisecond, "what --slow-log counts as slow")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "walrus-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	for _, a := range strings.Split(*addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Addrs = append(cfg.Addrs, a)
		}
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	if *slowFile != "" {
		f, err := os.Create(*slowFile)
		if err != nil {
			fmt.Fprintln(stderr, "walrus-bench:", err)
			return 2
		}
		defer f.Close()
		cfg.SlowLog = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "walrus-bench:", err)
		return 2
	}
	js, err := json.Marshal(rep)
	if err != nil {
		fmt.Fprintln(stderr, "walrus-bench:", err)
		return 1
	}
	js = append(js, '\n')
	if *jsonFile != "" {
		if err := os.WriteFile(*jsonFile, js, 0o644); err != nil {
			fmt.Fprintln(stderr, "walrus-bench:", err)
			return 1
		}
	}
	if *jsonOut {
		if _, err := stdout.Write(js); err != nil {
			return 1
		}
	} else {
		rep.writeText(stdout)
	}
	// exit 1 when a message was not acknowledged or a consumer did not
	// read to the end (consumers' retried request errors do not count)
	if rep.Produce != nil && rep.Produce.Errors > 0 || rep.Consume != nil && rep.Consume.CaughtUp < rep.Consume.Consumers {
		return 1
	}
	return 0
}
