package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// devStartTimeout bounds how long walrus dev waits for a node's client
// port to accept connections before it calls the start failed.
const devStartTimeout = 15 * time.Second

// runDev starts a local cluster of child node processes on the documented
// ports (client 9091.., raft 6001.., http 8081.., each shifted by
// --port-offset) with data under one folder: node 1 bootstraps, the others join it. A node that fails to
// start stops them all. Once the cluster runs, a node that exits (killed
// to try a failover, say) is reported with the command that starts it
// again, and the others keep running. Ctrl-C stops them all.
func runDev(args []string) int {
	fs := flag.NewFlagSet("walrus dev", flag.ContinueOnError)
	dir := fs.String("data-dir", "./data/dev", "data folder for all nodes")
	nodes := fs.Int("nodes", 3, "how many nodes")
	logLevel := fs.String("log-level", "info", "log level of the nodes")
	offset := fs.Int("port-offset", 0, "add this to every port (to run beside another walrus dev, or when 8081 is taken)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: walrus dev [flags]

Runs a local cluster of child node processes on the reference ports
(client 9091.., raft 6001.., http 8081..; --port-offset N adds N to
each); node 1 bootstraps, the others join it. Ctrl-C stops them all; a
node killed meanwhile is reported with the command that starts it again,
and the others keep running.

flags:
`)
		fs.PrintDefaults()
	}
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
	// A port taken (by another walrus dev, say) would make a node exit, or
	// worse, answer for it: refuse before starting any.
	for i := 1; i <= *nodes; i++ {
		client, raft, http := devPorts(i, *offset)
		for _, port := range []int{client, raft, http} {
			if port < 1 || port > 65535 {
				fmt.Fprintf(os.Stderr, "walrus dev: --port-offset %d puts a port at %d, outside 1..65535\n", *offset, port)
				return 2
			}
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				fmt.Fprintf(os.Stderr, "walrus dev: %s is in use (another walrus dev still running? --port-offset runs one beside it): %v\n", addr, err)
				return 1
			}
			ln.Close()
		}
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "walrus dev:", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	exited := make(chan int, *nodes)
	var procs []*devNode
	for i := 1; i <= *nodes; i++ {
		logPath := filepath.Join(*dir, fmt.Sprintf("node_%d.log", i))
		client, raft, http := devPorts(i, *offset)
		a := []string{"--node-id", strconv.Itoa(i), "--data-dir", *dir, "--log-level", *logLevel, "--log-file", logPath}
		if *offset != 0 {
			// the node's port flags default to the unshifted layout
			a = append(a, "--client-port", strconv.Itoa(client), "--raft-port", strconv.Itoa(raft), "--http-port", strconv.Itoa(http))
		}
		if i > 1 {
			_, first, _ := devPorts(1, *offset)
			a = append(a, "--join", fmt.Sprintf("127.0.0.1:%d", first))
		}
		nd := &devNode{id: i, args: a, cmd: exec.Command(self, a...), done: make(chan struct{})}
		nd.cmd.Stdout, nd.cmd.Stderr = os.Stdout, os.Stderr
		nd.cmd.Env = os.Environ()
		if err := nd.cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "walrus dev: start node", i, err)
			stopAll(procs)
			return 1
		}
		procs = append(procs, nd)
		go func() {
			nd.err = nd.cmd.Wait()
			close(nd.done)
			exited <- nd.id
		}()
		addr := fmt.Sprintf("127.0.0.1:%d", client)
		if err := waitListening(addr, nd.done, sig); errors.Is(err, errInterrupted) {
			stopAll(procs) // Ctrl-C while starting
			return 0
		} else if err != nil {
			fmt.Fprintf(os.Stderr, "walrus dev: node %d did not start (%v); see %s. Stopping the others.\n", i, err, logPath)
			stopAll(procs)
			return 1
		}
		fmt.Printf("node %d (pid %d): client %s  raft 127.0.0.1:%d  http 127.0.0.1:%d  log %s\n",
			i, nd.cmd.Process.Pid, addr, raft, http, logPath)
	}
	cli := "go run ./cmd/walrus-cli"
	if *offset != 0 {
		first, _, _ := devPorts(1, *offset)
		cli += fmt.Sprintf(" --addr 127.0.0.1:%d", first)
	}
	fmt.Printf("cluster running; try: %s register logs && %s put logs hello\n", cli, cli)
	fmt.Println("kill a node (kill -9 <pid>) to watch a failover; Ctrl-C stops every node")
	for running := len(procs); running > 0; {
		select {
		case <-sig:
			stopAll(procs)
			return 0
		case id := <-exited:
			running--
			nd := procs[id-1]
			fmt.Fprintf(os.Stderr, "walrus dev: node %d exited (%v); the others keep running. To start it again:\n  %s\n",
				id, exitDescription(nd.err), restartCommand(self, nd.args))
		}
	}
	fmt.Fprintln(os.Stderr, "walrus dev: every node has exited")
	return 1
}

// devPorts is node i's client, raft and HTTP port: the reference's
// layout (each node's flags' defaults), shifted by offset.
func devPorts(i, offset int) (client, raft, http int) {
	return 9090 + i + offset, 6000 + i + offset, 8080 + i + offset
}

// devNode is one node process of walrus dev.
type devNode struct {
	id   int
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited; err is its Wait's result then
	err  error
}

func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// errInterrupted: walrus dev was told to stop while a node was starting.
var errInterrupted = errors.New("interrupted")

// waitListening waits until addr accepts a connection. It gives up when
// the node exits first (done closed), on a signal (errInterrupted), or
// after devStartTimeout.
func waitListening(addr string, done chan struct{}, sig chan os.Signal) error {
	deadline := time.Now().Add(devStartTimeout)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return errors.New("it exited")
		case <-sig:
			return errInterrupted
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %v", addr, devStartTimeout)
		}
	}
}

// restartCommand is the command line that starts a node of walrus dev
// again: through go run when dev itself runs from go run's build cache.
func restartCommand(self string, args []string) string {
	bin := self
	if strings.Contains(self, "go-build") {
		bin = "go run ./cmd/walrus"
	}
	return bin + " " + strings.Join(args, " ")
}

// stopAll sends SIGTERM to every node still running and waits for them,
// killing any that has not exited 10 s later.
func stopAll(procs []*devNode) {
	var wg sync.WaitGroup
	for _, nd := range procs {
		select {
		case <-nd.done:
			continue
		default:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = nd.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-nd.done:
			case <-time.After(10 * time.Second):
				_ = nd.cmd.Process.Kill()
				<-nd.done
			}
		}()
	}
	wg.Wait()
}
