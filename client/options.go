package client

import (
	"context"
	"math/rand/v2"
	"net"
	"time"

	"github.com/walrus-go/walrus/wire"
)

// Defaults of the options.
const (
	// DefaultPoolSize is the number of connections kept per node.
	DefaultPoolSize = 2
	// DefaultRequestTimeout bounds the wait for one reply. It exceeds the
	// server's own 10 s routing deadline, so a server that is alive always
	// answers first; GETW and GROUPREAD add their wait to it.
	DefaultRequestTimeout = 15 * time.Second
	// DefaultMaxFrame is the largest request the client sends and the
	// largest reply it accepts: the server's default limit.
	DefaultMaxFrame = wire.DefaultMaxFrame
)

// DefaultRetryPolicy rides out a failover (a few seconds) with room to
// spare: 10 attempts, back-off from 50 ms doubling up to 1 s.
var DefaultRetryPolicy = RetryPolicy{Attempts: 10, MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}

// RetryPolicy says how often and how patiently a retryable failure is
// retried (see the package documentation for what is retryable).
//
// Before attempt k+1 (k >= 1) the client sleeps a duration drawn uniformly
// from [MinBackoff, min(MaxBackoff, MinBackoff * 2^(k-1))]: exponential
// growth, capped, with jitter so that many clients do not retry in step.
// The draw uses the client's random source (WithRandSource).
type RetryPolicy struct {
	// Attempts is the total number of tries, the first included: 1 disables
	// retries. 0 or less means no limit: retry until the context is done.
	Attempts int
	// MinBackoff is the shortest sleep between attempts.
	MinBackoff time.Duration
	// MaxBackoff caps the sleep. Values below MinBackoff count as
	// MinBackoff.
	MaxBackoff time.Duration
}

// NoRetry makes every failure final.
var NoRetry = RetryPolicy{Attempts: 1}

// Dialer opens connections; *net.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

type config struct {
	poolSize           int
	requestTimeout     time.Duration
	maxFrame           int
	retry              RetryPolicy
	rand               rand.Source
	dialer             Dialer
	retryUnknownWrites bool
	smartRouting       bool
	leaderTTL          time.Duration
	idleTimeout        time.Duration
	plainSyscalls      bool
}

func defaultConfig() config {
	return config{
		poolSize:       DefaultPoolSize,
		requestTimeout: DefaultRequestTimeout,
		maxFrame:       DefaultMaxFrame,
		retry:          DefaultRetryPolicy,
		dialer:         &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		smartRouting:   true,
		leaderTTL:      5 * time.Second,
		// the server closes a connection idle for 5 minutes; we replace
		// ours before that, so a request never races the server's close
		idleTimeout: 4 * time.Minute,
	}
}

// Option configures a Client (see Dial).
type Option func(*config)

// WithPoolSize sets how many connections the client keeps per node
// (default DefaultPoolSize; values below 1 count as 1). Connections are
// dialled when needed: a second one only while the first is busy.
func WithPoolSize(n int) Option {
	return func(c *config) { c.poolSize = max(n, 1) }
}

// WithRequestTimeout bounds how long one attempt waits for its reply
// (default DefaultRequestTimeout; GETW and GROUPREAD add their wait). A
// request that times out after it was written has an unknown outcome.
// The context given to each call bounds the whole call, retries included.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.requestTimeout = d
		}
	}
}

// WithMaxFrame sets the largest request body the client sends and the
// largest reply body it accepts (default DefaultMaxFrame, the server's
// default; set it to the server's --max-frame if you raised that). Larger
// requests fail locally with ErrTooLarge, before anything is sent: the
// server would close the connection on them. So do Put and PutBatch
// entries over wire.MaxEntrySize(n) (n - 30 bytes), which the server
// refuses as their READ reply would not fit the limit.
func WithMaxFrame(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxFrame = n
		}
	}
}

// WithRetry sets the retry policy (default DefaultRetryPolicy; NoRetry
// disables retries).
func WithRetry(p RetryPolicy) Option {
	return func(c *config) { c.retry = p }
}

// WithRandSource sets the source of the back-off jitter, e.g.
// rand.NewPCG(seed, 0) for reproducible runs. The client serialises its
// use. By default the source is seeded from the clock.
func WithRandSource(src rand.Source) Option {
	return func(c *config) { c.rand = src }
}

// WithPlainSyscalls has the client read and write its connections with
// ordinary system calls, as net.Conn does. By default, on Linux, a
// *net.TCPConn is read and written with raw system calls, which wake Go's
// runtime less often per request (as the node does; walrus
// --plain-syscalls).
func WithPlainSyscalls() Option {
	return func(c *config) { c.plainSyscalls = true }
}

// WithDialer sets how connections are opened (default: a *net.Dialer with
// a 5 s timeout).
func WithDialer(d Dialer) Option {
	return func(c *config) {
		if d != nil {
			c.dialer = d
		}
	}
}

// RetryUnknownWrites(true) lets the client retry a PUT or MPUT whose
// outcome is unknown: the connection dropped after the request was
// written, the attempt timed out, or the server answered "... outcome
// unknown". This MAY DUPLICATE ENTRIES: the first attempt may have been
// appended. Off by default.
func RetryUnknownWrites(on bool) Option {
	return func(c *config) { c.retryUnknownWrites = on }
}

// WithSmartRouting turns leader routing of writes on (the default) or off.
// Off, every request goes to any node, which forwards it.
func WithSmartRouting(on bool) Option {
	return func(c *config) { c.smartRouting = on }
}

// RegisterOption configures Register.
type RegisterOption func(*registerOpts)

type registerOpts struct {
	rf    int
	hasRF bool
}

// RF sets the replication factor of a new topic (1..255; the server caps it
// at the cluster size; an existing topic keeps its own). Out-of-range
// values are sent as is, and the server rejects them with
// "REGISTER rf must be an integer from 1 to 255".
func RF(n int) RegisterOption {
	return func(o *registerOpts) { o.rf, o.hasRF = n, true }
}
