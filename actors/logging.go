package actors

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Libraries we embed log far more than an operator wants: protoactor writes
// coloured text at Info, hashicorp/raft chats at Debug. Both are routed into
// the node's slog logger behind a floor (Warn by default), tagged with the
// library's name so their lines can be told apart from ours.

// floorHandler drops records below min and passes the rest to next.
type floorHandler struct {
	min  slog.Level
	next slog.Handler
}

// WithFloor returns a logger that writes through base only records at min or
// above.
func WithFloor(base *slog.Logger, min slog.Level) *slog.Logger {
	return slog.New(&floorHandler{min: min, next: base.Handler()})
}

func (h *floorHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.next.Enabled(ctx, l)
}
func (h *floorHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ctx, r)
}
func (h *floorHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &floorHandler{min: h.min, next: h.next.WithAttrs(as)}
}
func (h *floorHandler) WithGroup(name string) slog.Handler {
	return &floorHandler{min: h.min, next: h.next.WithGroup(name)}
}

// hclogAdapter implements hclog.Logger (hashicorp/raft's logger) on slog.
type hclogAdapter struct {
	l    *slog.Logger
	name string
	args []interface{}
	*raftLogRules
}

// raftLogRules are shared by a raft logger and the loggers made from it
// (Named, With).
type raftLogRules struct {
	stopping func() bool      // nil, or whether the node is stopping (see NewRaftLogger)
	now      func() time.Time // nil: no repeat limit
	repeats  *repeatLimiter
}

// NewRaftLogger returns an hclog.Logger that writes into base at min or
// above.
//
// While stopping() says the node is stopping, raft's warnings and errors
// are logged at Info: when a whole cluster stops at once, every node's
// raft complains that the others are gone (heartbeats refused, no quorum,
// connections closed under it), and an operator who stopped them should
// not read that as a fault. What the stop itself gets wrong the node logs
// on its own. stopping may be nil.
//
// Raft repeats its warnings and errors about a peer that is down several
// times a second ("failed to heartbeat to", "failed to appendEntries to")
// for as long as it is down: of each such complaint (the same message
// about the same peer) the first is logged, then at most one every
// raftRepeatWindow of now's time, with held_back=N counting those not
// logged in between. now may be nil (every line is logged).
func NewRaftLogger(base *slog.Logger, min slog.Level, stopping func() bool, now func() time.Time) hclog.Logger {
	return &hclogAdapter{l: WithFloor(base, min).With("lib", "raft"), name: "raft",
		raftLogRules: &raftLogRules{stopping: stopping, now: now, repeats: newRepeatLimiter(raftRepeatWindow)}}
}

// raftRepeatWindow: at most one line a minute per complaint about a peer
// that stays down, instead of several a second.
const raftRepeatWindow = time.Minute

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...interface{}) {
	lv := toSlog(level)
	if lv > slog.LevelInfo && a.stopping != nil && a.stopping() {
		lv = slog.LevelInfo
	}
	if !a.l.Enabled(context.Background(), lv) {
		return
	}
	all := append(append([]interface{}{}, a.args...), args...)
	if lv > slog.LevelInfo && a.now != nil {
		ok, held := a.repeats.admit(a.name+"\x00"+msg+"\x00"+peerOf(all), a.now())
		if !ok {
			return
		}
		if held > 0 {
			all = append(all, "held_back", held)
		}
	}
	a.l.Log(context.Background(), lv, msg, all...)
}

// peerOf is the value of the "peer" or "server-id" key among hclog's
// key-value args ("" if none): whom a repeated complaint is about.
func peerOf(args []interface{}) string {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && (k == "peer" || k == "server-id") {
			return fmt.Sprint(args[i+1])
		}
	}
	return ""
}

// repeatLimiter lets the first of a run of equal complaints through, then
// one per window, and counts those it held back. The caller gives the
// time, so the decision is the same under a simulated clock.
type repeatLimiter struct {
	mu     sync.Mutex
	window time.Duration
	runs   map[string]*repeatRun
}

type repeatRun struct {
	logged time.Time // when the last one was let through
	held   int       // held back since
	heldAt time.Time // when the last one was held back
}

// maxRepeatKeys bounds the limiter's memory: past it, it starts over
// (every complaint's next line is logged).
const maxRepeatKeys = 1024

func newRepeatLimiter(window time.Duration) *repeatLimiter {
	return &repeatLimiter{window: window, runs: map[string]*repeatRun{}}
}

// admit reports whether the complaint key may be logged at now, and how
// many like it were held back since the last one logged, unless those
// ended a window or more ago: the complaint stopped (the peer came back)
// and this is a new run of it, whose first line should not carry the
// last run's count.
func (l *repeatLimiter) admit(key string, now time.Time) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.runs[key]
	if r == nil {
		if len(l.runs) >= maxRepeatKeys {
			clear(l.runs)
		}
		l.runs[key] = &repeatRun{logged: now}
		return true, 0
	}
	if now.Sub(r.logged) < l.window {
		r.held++
		r.heldAt = now
		return false, 0
	}
	if now.Sub(r.heldAt) < l.window {
		held = r.held
	}
	r.logged, r.held = now, 0
	return true, held
}

func (a *hclogAdapter) Trace(msg string, args ...interface{}) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...interface{}) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...interface{})  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...interface{})  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...interface{}) { a.Log(hclog.Error, msg, args...) }
func (a *hclogAdapter) IsTrace() bool                         { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool                         { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool                          { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool                          { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool                         { return a.enabled(hclog.Error) }
func (a *hclogAdapter) enabled(l hclog.Level) bool {
	return a.l.Enabled(context.Background(), toSlog(l))
}
func (a *hclogAdapter) ImpliedArgs() []interface{} { return a.args }
func (a *hclogAdapter) With(args ...interface{}) hclog.Logger {
	return &hclogAdapter{l: a.l, name: a.name, args: append(append([]interface{}{}, a.args...), args...), raftLogRules: a.raftLogRules}
}
func (a *hclogAdapter) Name() string { return a.name }
func (a *hclogAdapter) Named(name string) hclog.Logger {
	return &hclogAdapter{l: a.l.With("component", name), name: a.name + "." + name, args: a.args, raftLogRules: a.raftLogRules}
}
func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{l: a.l.With("component", name), name: name, args: a.args, raftLogRules: a.raftLogRules}
}

// SetLevel is ignored: the floor is set once, from the node's flags.
func (a *hclogAdapter) SetLevel(hclog.Level) {}
func (a *hclogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Error
}
func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}
func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		a.Warn(string(p))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
