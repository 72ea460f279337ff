package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// runDev starts a local cluster of child node processes on the documented
// ports (client 9091.., raft 6001.., http 8081..) with data under one
// folder: node 1 bootstraps, the others join it. Ctrl-C stops them all.
func runDev(args []string) int {
	fs := flag.NewFlagSet("walrus dev", flag.ContinueOnError)
	dir := fs.String("data-dir", "./data/dev", "data folder for all nodes")
	nodes := fs.Int("nodes", 3, "how many nodes")
	logLevel := fs.String("log-level", "info", "log level of the nodes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *nodes < 1 || *nodes > 9 {
		fmt.Fprintln(os.Stderr, "walrus dev: --nodes must be 1..9")
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "walrus dev:", err)
		return 1
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "walrus dev:", err)
		return 1
	}
	var procs []*exec.Cmd
	for i := 1; i <= *nodes; i++ {
		a := []string{"--node-id", strconv.Itoa(i), "--data-dir", *dir, "--log-level", *logLevel,
			"--log-file", filepath.Join(*dir, fmt.Sprintf("node_%d.log", i))}
		if i > 1 {
			a = append(a, "--join", "127.0.0.1:6001")
		}
		cmd := exec.Command(self, a...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = os.Environ()
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "walrus dev: start node", i, err)
			stopAll(procs)
			return 1
		}
		procs = append(procs, cmd)
		fmt.Printf("node %d: client 127.0.0.1:%d  raft 127.0.0.1:%d  http 127.0.0.1:%d  log %s\n",
			i, 9090+i, 6000+i, 8080+i, filepath.Join(*dir, fmt.Sprintf("node_%d.log", i)))
		if i == 1 {
			time.Sleep(300 * time.Millisecond) // let the first node bootstrap before others join
		}
	}
	fmt.Println("cluster running; try: go run ./cmd/walrus-cli register logs && go run ./cmd/walrus-cli put logs hello")
	fmt.Println("Ctrl-C stops every node")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	exited := make(chan int, len(procs))
	for i, p := range procs {
		go func(i int, p *exec.Cmd) {
			_ = p.Wait()
			exited <- i + 1
		}(i, p)
	}
	select {
	case <-sig:
	case id := <-exited:
		fmt.Fprintf(os.Stderr, "walrus dev: node %d exited; stopping the others\n", id)
	}
	stopAll(procs)
	return 0
}

func stopAll(procs []*exec.Cmd) {
	var wg sync.WaitGroup
	for _, p := range procs {
		if p.Process == nil || p.ProcessState != nil {
			continue
		}
		wg.Add(1)
		go func(p *exec.Cmd) {
			defer wg.Done()
			_ = p.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _, _ = p.Process.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.Process.Kill()
			}
		}(p)
	}
	wg.Wait()
}
