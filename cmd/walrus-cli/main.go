// Command walrus-cli talks to one Walrus node over the client protocol:
// one-off subcommands, or with no subcommand an interactive prompt that
// sends each typed line as a raw request. See docs/cli.md.
//
// Exit status: 0 on success, 1 when the node answers ERR (printed to
// stderr) or cannot be reached, 2 on a usage error.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/walrus-go/walrus/client"
	"github.com/walrus-go/walrus/wire"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: walrus-cli [--addr host:port] [--timeout d] [command [args]]

commands (the reference's):
  register <topic> [rf=<n>]           create a topic (idempotent); prints OK
  put <topic> <payload>...            append one entry: the words after the topic
                                      joined by single spaces; prints OK
  get <topic>                         consume the next entry of the shared cursor;
                                      prints it, or EMPTY
  state <topic>                       the topic's STATE JSON
  metrics                             the node's METRICS JSON

commands (our additions):
  getw <topic> <wait_ms>              get, waiting up to wait_ms for an entry
  read <topic> <offset> [max]         entries from offset (max default 1), one per
                                      line: <offset><TAB><payload>; EMPTY if none
                                      (reads on past segment boundaries)
  mput <topic> <payload>...           append each argument as one entry; prints
                                      OK <first> <count> [<first> <count>]...
  groupread <topic> <group> [max] [wait_ms]
                                      a consumer group's next entries (like read);
                                      does not commit
  commit <topic> <group> <offset>     set the group's next offset; prints OK
  leader <topic>                      prints <segment> <node_id> <client_addr>
  retention <topic> [max_age_ms=N] [max_bytes=N] [max_segments=N]
                                      set the topic's retention (omitted = unlimited)

cluster administration:
  nodes                               the members as JSON (addresses, liveness,
                                      voter or not)
  remove-node <id>                    remove a node for good; its segments are
                                      re-replicated; prints OK

With no command, walrus-cli reads requests from stdin, one per line (e.g.
"PUT logs hello"), sends each as is and prints the reply; exit, quit or q
(or end of input) leaves.

An ERR reply is printed to stderr and exits 1; usage errors exit 2.
`

// exitUsage etc. are the exit statuses.
const (
	exitOK    = 0
	exitErr   = 1
	exitUsage = 2
)

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("walrus-cli", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:9091", "client address of the node to talk to")
	timeout := fs.Duration("timeout", 30*time.Second, "how long a command may take (GETW and GROUPREAD add their wait)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "walrus-cli: %v\n%s", err, usage)
		return exitUsage
	}
	args = fs.Args()
	if len(args) > 0 {
		cmd, ok := commands[args[0]]
		if !ok {
			fmt.Fprintf(stderr, "walrus-cli: unknown command %q\n%s", args[0], usage)
			return exitUsage
		}
		// check the arguments before connecting
		if err := cmd(nil, args[1:], io.Discard); err != nil {
			var ue *usageError
			if errors.As(err, &ue) {
				fmt.Fprintf(stderr, "walrus-cli: %s: %v\n%s", args[0], err, usage)
				return exitUsage
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := client.Dial(ctx, []string{*addr},
		client.WithPoolSize(1), client.WithSmartRouting(false), client.WithRetry(client.NoRetry),
		client.WithRequestTimeout(*timeout))
	if err != nil {
		fmt.Fprintf(stderr, "walrus-cli: %v\n", err)
		return exitErr
	}
	defer c.Close()

	if len(args) == 0 {
		return prompt(c, *addr, *timeout, stdin, stdout, stderr)
	}
	cctx := &cmdContext{ctx: ctx, c: c, timeout: *timeout}
	if err := commands[args[0]](cctx, args[1:], stdout); err != nil {
		var se *client.ServerError
		if errors.As(err, &se) {
			fmt.Fprintf(stderr, "ERR %s\n", se.Msg)
		} else {
			fmt.Fprintf(stderr, "walrus-cli: %v\n", err)
		}
		return exitErr
	}
	return exitOK
}

// cmdContext carries what a command needs to talk to the node. A nil
// *cmdContext means "check the arguments only".
type cmdContext struct {
	ctx     context.Context
	c       *client.Client
	timeout time.Duration
}

// withWait extends the command's deadline by a server-side wait.
func (cc *cmdContext) withWait(wait time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cc.timeout+wait)
}

// command checks args, and when cc is not nil runs the command and prints
// its result to out.
type command func(cc *cmdContext, args []string, out io.Writer) error

var commands = map[string]command{
	"register":    cmdRegister,
	"put":         cmdPut,
	"get":         cmdGet,
	"state":       cmdState,
	"metrics":     cmdMetrics,
	"getw":        cmdGetW,
	"read":        cmdRead,
	"mput":        cmdMPut,
	"groupread":   cmdGroupRead,
	"commit":      cmdCommit,
	"leader":      cmdLeader,
	"retention":   cmdRetention,
	"nodes":       cmdNodes,
	"remove-node": cmdRemoveNode,
}

func nargs(args []string, lo, hi int, form string) error {
	if len(args) < lo || (hi >= 0 && len(args) > hi) {
		return usagef("want %s", form)
	}
	return nil
}

func parseUint(what, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, usagef("%s %q is not a non-negative integer", what, s)
	}
	return n, nil
}

func parseInt(what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, usagef("%s %q is not an integer", what, s)
	}
	return n, nil
}

func parseWait(s string) (time.Duration, error) {
	n, err := parseInt("wait_ms", s)
	if err != nil {
		return 0, err
	}
	if maxMs := int64(wire.MaxWait / time.Millisecond); n < 0 || int64(n) > maxMs {
		return 0, usagef("wait_ms %d: want 0..%d", n, maxMs)
	}
	return time.Duration(n) * time.Millisecond, nil
}

func cmdRegister(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 1, 2, "register <topic> [rf=<n>]"); err != nil {
		return err
	}
	var opts []client.RegisterOption
	if len(args) == 2 {
		v, ok := strings.CutPrefix(args[1], "rf=")
		if !ok {
			return usagef("want register <topic> [rf=<n>], got %q", args[1])
		}
		rf, err := parseInt("rf", v)
		if err != nil {
			return err
		}
		opts = append(opts, client.RF(rf))
	}
	if cc == nil {
		return nil
	}
	if err := cc.c.Register(cc.ctx, args[0], opts...); err != nil {
		return err
	}
	fmt.Fprintln(out, "OK")
	return nil
}

func cmdPut(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 2, -1, "put <topic> <payload>..."); err != nil || cc == nil {
		return err
	}
	if err := cc.c.Put(cc.ctx, args[0], []byte(strings.Join(args[1:], " "))); err != nil {
		return err
	}
	fmt.Fprintln(out, "OK")
	return nil
}

func cmdGet(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 1, 1, "get <topic>"); err != nil || cc == nil {
		return err
	}
	p, ok, err := cc.c.Get(cc.ctx, args[0])
	return printValue(out, p, ok, err)
}

func cmdGetW(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 2, 2, "getw <topic> <wait_ms>"); err != nil {
		return err
	}
	wait, err := parseWait(args[1])
	if err != nil || cc == nil {
		return err
	}
	ctx, cancel := cc.withWait(wait)
	defer cancel()
	p, ok, err := cc.c.GetWait(ctx, args[0], wait)
	return printValue(out, p, ok, err)
}

// printValue prints a GET's result: the payload as is, or EMPTY.
func printValue(out io.Writer, p []byte, ok bool, err error) error {
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(out, "EMPTY")
		return nil
	}
	out.Write(p)
	fmt.Fprintln(out)
	return nil
}

func cmdState(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 1, 1, "state <topic>"); err != nil || cc == nil {
		return err
	}
	st, err := cc.c.State(cc.ctx, args[0])
	if err != nil {
		return err
	}
	out.Write(st.Raw)
	fmt.Fprintln(out)
	return nil
}

func cmdMetrics(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 0, 0, "metrics"); err != nil || cc == nil {
		return err
	}
	// raw, to print the JSON exactly as the node sent it
	return raw(cc, wire.CmdMetrics, out)
}

func cmdRead(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 2, 3, "read <topic> <offset> [max]"); err != nil {
		return err
	}
	offset, err := parseUint("offset", args[1])
	if err != nil {
		return err
	}
	maxN := wire.DefaultReadMax
	if len(args) == 3 {
		if maxN, err = parseInt("max", args[2]); err != nil {
			return err
		}
	}
	if cc == nil {
		return nil
	}
	// A READ stops at a segment's end, and takes at most wire.MaxReadMax;
	// go on from there until max entries or the end of the log, so that a
	// reader of the CLI sees the log, not its segments or READ's limit.
	printed := 0
	for {
		first, entries, err := cc.c.Read(cc.ctx, args[0], offset, min(maxN-printed, wire.MaxReadMax))
		if err != nil || len(entries) == 0 {
			if printed > 0 && err == nil {
				return nil
			}
			return printEntries(out, first, entries, err)
		}
		if err := printEntries(out, first, entries, nil); err != nil {
			return err
		}
		printed += len(entries)
		offset = first + uint64(len(entries))
		if printed >= maxN {
			return nil
		}
	}
}

func cmdGroupRead(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 2, 4, "groupread <topic> <group> [max] [wait_ms]"); err != nil {
		return err
	}
	maxN := wire.DefaultReadMax
	var wait time.Duration
	var err error
	if len(args) >= 3 {
		if maxN, err = parseInt("max", args[2]); err != nil {
			return err
		}
	}
	if len(args) == 4 {
		if wait, err = parseWait(args[3]); err != nil {
			return err
		}
	}
	if cc == nil {
		return nil
	}
	ctx, cancel := cc.withWait(wait)
	defer cancel()
	first, entries, err := cc.c.GroupRead(ctx, args[0], args[1], maxN, wait)
	return printEntries(out, first, entries, err)
}

// printEntries prints one entry per line, "<offset>\t<payload>", or EMPTY.
func printEntries(out io.Writer, first uint64, entries [][]byte, err error) error {
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		fmt.Fprintln(out, "EMPTY")
		return nil
	}
	w := bufio.NewWriter(out)
	for i, e := range entries {
		fmt.Fprintf(w, "%d\t%s\n", first+uint64(i), printable(e))
	}
	return w.Flush()
}

// printable returns p as is when it is valid UTF-8 without control
// characters, else as a Go-quoted string.
func printable(p []byte) string {
	if !utf8.Valid(p) || strings.IndexFunc(string(p), unicode.IsControl) >= 0 {
		return strconv.Quote(string(p))
	}
	return string(p)
}

func cmdMPut(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 2, -1, "mput <topic> <payload>..."); err != nil || cc == nil {
		return err
	}
	payloads := make([][]byte, len(args)-1)
	for i, a := range args[1:] {
		payloads[i] = []byte(a)
	}
	ranges, err := cc.c.PutBatch(cc.ctx, args[0], payloads)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("OK")
	for _, r := range ranges {
		fmt.Fprintf(&b, " %d %d", r.First, r.Count)
	}
	fmt.Fprintln(out, b.String())
	return nil
}

func cmdCommit(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 3, 3, "commit <topic> <group> <offset>"); err != nil {
		return err
	}
	offset, err := parseUint("offset", args[2])
	if err != nil || cc == nil {
		return err
	}
	if err := cc.c.Commit(cc.ctx, args[0], args[1], offset); err != nil {
		return err
	}
	fmt.Fprintln(out, "OK")
	return nil
}

// raw sends one request and prints the reply body: JSON replies as they
// came, OK as OK; an ERR reply becomes the error.
func raw(cc *cmdContext, req string, out io.Writer) error {
	body, err := cc.c.Do(cc.ctx, []byte(req))
	if err != nil {
		return err
	}
	if msg, isErr := strings.CutPrefix(string(body), "ERR "); isErr {
		return &client.ServerError{Msg: msg}
	}
	out.Write(body)
	fmt.Fprintln(out)
	return nil
}

func cmdRetention(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 1, 4, "retention <topic> [max_age_ms=N] [max_bytes=N] [max_segments=N]"); err != nil || cc == nil {
		return err
	}
	return raw(cc, wire.CmdRetention+" "+strings.Join(args, " "), out)
}

func cmdNodes(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 0, 0, "nodes"); err != nil || cc == nil {
		return err
	}
	return raw(cc, wire.CmdNodes, out)
}

func cmdRemoveNode(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 1, 1, "remove-node <id>"); err != nil {
		return err
	}
	id, err := parseUint("node id", args[0])
	if err != nil || cc == nil {
		return err
	}
	return raw(cc, fmt.Sprintf("%s %d", wire.CmdRemoveNode, id), out)
}

func cmdLeader(cc *cmdContext, args []string, out io.Writer) error {
	if err := nargs(args, 1, 1, "leader <topic>"); err != nil || cc == nil {
		return err
	}
	seg, node, addr, err := cc.c.Leader(cc.ctx, args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d %d %s\n", seg, node, addr)
	return nil
}

// prompt sends each input line as a raw request and prints the reply:
// replies on stdout (READ and GROUPREAD batches decoded, one entry per
// line), ERR replies on stderr. It returns 1 if a request got no reply.
func prompt(c *client.Client, addr string, timeout time.Duration, stdin io.Reader, stdout, stderr io.Writer) int {
	interactive := isTerminal(stdin)
	if interactive {
		fmt.Fprintf(stdout, "walrus-cli: connected to %s. Type requests (REGISTER, PUT, GET, STATE, METRICS, READ, ...); exit, quit or q leaves.\n", addr)
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), client.DefaultMaxFrame+1)
	status := exitOK
	for {
		if interactive {
			fmt.Fprint(stdout, "walrus> ")
		}
		if !sc.Scan() {
			break
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		switch strings.ToLower(line) {
		case "exit", "quit", "q":
			return status
		}
		req, _ := wire.ParseRequest([]byte(line))
		ctx, cancel := context.WithTimeout(context.Background(), timeout+req.Wait)
		reply, err := c.Do(ctx, []byte(line))
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "walrus-cli: %v\n", err)
			status = exitErr
			continue
		}
		printReply(stdout, stderr, req.Cmd, reply)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "walrus-cli: reading input: %v\n", err)
		return exitErr
	}
	return status
}

// printReply prints a raw reply; batch replies (READ, GROUPREAD) as their
// header line "OK <first> <count>" and then one entry per line.
func printReply(stdout, stderr io.Writer, cmd string, reply []byte) {
	r := wire.ParseReply(reply)
	if r.Kind == wire.ReplyErr {
		fmt.Fprintf(stderr, "%s\n", reply)
		return
	}
	if r.Kind == wire.ReplyOK && (cmd == wire.CmdRead || cmd == wire.CmdGroupRead) {
		if first, entries, err := wire.ParseBatchReply(r.Payload); err == nil {
			fmt.Fprintf(stdout, "OK %d %d\n", first, len(entries))
			_ = printEntries(stdout, first, entries, nil)
			return
		}
	}
	stdout.Write(reply)
	fmt.Fprintln(stdout)
}

// isTerminal reports whether r is a character device (a terminal), so the
// prompt is shown only to people, not to pipes.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
