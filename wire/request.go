package wire

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Command words. The first five are the reference protocol; the rest are
// our additions (docs/protocol.md). Words are matched exactly: upper case only.
const (
	CmdRegister  = "REGISTER"
	CmdPut       = "PUT"
	CmdGet       = "GET"
	CmdState     = "STATE"
	CmdMetrics   = "METRICS"
	CmdRead      = "READ"
	CmdMPut      = "MPUT"
	CmdGroupRead = "GROUPREAD"
	CmdCommit    = "COMMIT"
	CmdLeader    = "LEADER"
	CmdGetW      = "GETW"
	// Cluster administration (docs/protocol.md "Administration").
	CmdNodes      = "NODES"
	CmdRetention  = "RETENTION"
	CmdRemoveNode = "REMOVENODE"
)

// Limits of our additive commands' arguments.
const (
	// DefaultReadMax is the entry count READ and GROUPREAD return at most
	// when the request gives no max.
	DefaultReadMax = 1
	// MaxReadMax is the largest max READ and GROUPREAD accept. The server
	// may return fewer entries (never zero when any is available) to keep
	// the reply within the frame limit.
	MaxReadMax = 10000
	// MaxMPutEntries is the largest entry count of one MPUT.
	MaxMPutEntries = 10000
	// MaxWait is the longest wait GETW and GROUPREAD accept.
	MaxWait = 5 * time.Minute
	// MaxRF is the largest rf=N REGISTER accepts. The node further caps it
	// at the cluster size.
	MaxRF = 255
)

// Request is one parsed client request.
//
// Slices (Payload, Entries) alias the body passed to ParseRequest; strings
// are copies. Fields that a command does not use are zero.
type Request struct {
	// Cmd is one of the Cmd* constants.
	Cmd string
	// Topic is the second word. For the reference commands it is exactly
	// the reference's second part (it may be empty, as in "GET  x"); our
	// additive commands require it non-empty.
	Topic string
	// Payload and HasPayload are the reference's third part: everything
	// after the second space, inner spaces kept. PUT requires it; REGISTER
	// reads options from it (RF); GET, STATE and METRICS ignore it, as the
	// reference does. Unused by the additive commands.
	Payload    []byte
	HasPayload bool

	// RF is REGISTER's rf=N option (0: not given, use the cluster default).
	RF int
	// Group names a consumer group (GROUPREAD, COMMIT).
	Group string
	// Offset is READ's first topic-global offset, or the position COMMIT
	// records (the next offset the group will read).
	Offset uint64
	// Max is how many entries READ or GROUPREAD may return (1..MaxReadMax;
	// DefaultReadMax when the request omits it).
	Max int
	// Wait is how long GETW or GROUPREAD may block for an entry to arrive
	// (0: do not wait), at millisecond resolution.
	Wait time.Duration
	// Entries are MPUT's payloads, in order, each non-empty.
	Entries [][]byte
	// Retention is RETENTION's policy (0 = unlimited).
	Retention RetentionPolicy
}

// RetentionPolicy is what RETENTION sets for a topic; zero fields are
// unlimited.
type RetentionPolicy struct {
	MaxAgeMs    uint64
	MaxBytes    uint64
	MaxSegments uint64
}

// command is one row of the command table.
type command struct {
	name string
	// raw: the arguments are binary and must not be trimmed (MPUT).
	raw bool
	// parse builds the request (all but Cmd) from args, the bytes after
	// "<CMD> " (hasArgs false when nothing followed the command word).
	parse func(args []byte, hasArgs bool) (Request, error)
	// appendArgs appends req's arguments, starting with their leading space.
	appendArgs func(dst []byte, req *Request) []byte
}

// commands is the command table: adding a command is adding one row.
var commands = map[string]command{
	CmdRegister:   {name: CmdRegister, parse: parseRegister, appendArgs: appendRegister},
	CmdPut:        {name: CmdPut, parse: parsePut, appendArgs: appendRef},
	CmdGet:        {name: CmdGet, parse: requireTopic(ErrGetRequiresTopic), appendArgs: appendRef},
	CmdState:      {name: CmdState, parse: requireTopic(ErrStateRequiresTopic), appendArgs: appendRef},
	CmdMetrics:    {name: CmdMetrics, parse: parseMetrics, appendArgs: appendRef},
	CmdRead:       {name: CmdRead, parse: parseRead, appendArgs: appendRead},
	CmdMPut:       {name: CmdMPut, raw: true, parse: parseMPut, appendArgs: appendMPut},
	CmdGroupRead:  {name: CmdGroupRead, parse: parseGroupRead, appendArgs: appendGroupRead},
	CmdCommit:     {name: CmdCommit, parse: parseCommit, appendArgs: appendCommit},
	CmdLeader:     {name: CmdLeader, parse: parseLeader, appendArgs: appendTopicOnly},
	CmdRetention:  {name: CmdRetention, parse: parseRetention, appendArgs: appendRetention},
	CmdNodes:      {name: CmdNodes, parse: parseNodes, appendArgs: func(dst []byte, _ *Request) []byte { return dst }},
	CmdRemoveNode: {name: CmdRemoveNode, parse: parseRemoveNode, appendArgs: appendRemoveNode},
	CmdGetW:       {name: CmdGetW, parse: parseGetW, appendArgs: appendGetW},
}

// TrimRequest drops trailing white space from a request body, exactly as
// the reference does (Rust's str::trim_end: Unicode White_Space, which
// includes ASCII space, \t, \n, \v, \f, \r, U+0085 and U+00A0). Bytes that
// are not valid UTF-8 are never trimmed.
func TrimRequest(body []byte) []byte {
	return bytes.TrimRightFunc(body, unicode.IsSpace)
}

// ParseRequest parses one request body (a frame's contents). On failure the
// error is a *Error whose Msg is the exact reply text after "ERR ".
//
// As in the reference: trailing white space is trimmed, then the request is
// split on single spaces into at most three parts (command, topic,
// payload); an empty or unrecognised command is "unknown command". MPUT's
// binary section is taken untrimmed.
func ParseRequest(body []byte) (Request, error) {
	trimmed := TrimRequest(body)
	word, args, hasArgs := bytes.Cut(trimmed, space)
	cmd, ok := commands[string(word)]
	if !ok {
		return Request{}, ErrUnknownCommand
	}
	if cmd.raw && hasArgs {
		args = body[len(word)+1:] // trimming only removes a suffix
	}
	req, err := cmd.parse(args, hasArgs)
	if err != nil {
		return Request{}, err
	}
	req.Cmd = cmd.name
	return req, nil
}

// AppendRequest appends the body of req (no frame header) to dst: the
// inverse of ParseRequest for any request it returned. req.Cmd must be a
// known command.
func AppendRequest(dst []byte, req *Request) []byte {
	cmd, ok := commands[req.Cmd]
	if !ok {
		panic("wire: AppendRequest: unknown command " + strconv.Quote(req.Cmd))
	}
	dst = append(dst, cmd.name...)
	return cmd.appendArgs(dst, req)
}

var space = []byte{' '}

// --- reference commands ---------------------------------------------------

// splitRef splits args as the reference does: topic up to the next space,
// payload everything after it.
func splitRef(req *Request, args []byte) {
	topic, payload, hasPayload := bytes.Cut(args, space)
	req.Topic = string(topic)
	if hasPayload {
		req.Payload, req.HasPayload = payload, true
	}
}

func requireTopic(missing *Error) func([]byte, bool) (Request, error) {
	return func(args []byte, hasArgs bool) (req Request, err error) {
		if !hasArgs {
			return req, missing
		}
		splitRef(&req, args)
		return req, nil
	}
}

func parsePut(args []byte, hasArgs bool) (req Request, err error) {
	if !hasArgs {
		return req, ErrPutRequiresTopic
	}
	splitRef(&req, args)
	if !req.HasPayload {
		return req, ErrPutRequiresPayload
	}
	return req, nil
}

func parseMetrics(args []byte, hasArgs bool) (req Request, err error) {
	if hasArgs {
		splitRef(&req, args)
	}
	return req, nil
}

// parseRegister accepts the reference form and our option rf=N anywhere in
// the (otherwise ignored) third part. Other words there are ignored, as the
// reference ignores the whole part. The topic's name must pass
// CheckTopicName.
func parseRegister(args []byte, hasArgs bool) (req Request, err error) {
	if !hasArgs {
		return req, ErrRegisterRequiresTopic
	}
	splitRef(&req, args)
	if !CheckTopicName(req.Topic) {
		return req, ErrRegisterBadTopic
	}
	for rest := req.Payload; len(rest) > 0; {
		var word []byte
		word, rest, _ = bytes.Cut(rest, space)
		v, isRF := bytes.CutPrefix(word, []byte("rf="))
		if !isRF {
			continue
		}
		n, ok := parseUint(v)
		if !ok || n < 1 || n > MaxRF {
			return req, errRange(CmdRegister, "rf", 1, MaxRF)
		}
		req.RF = int(n)
	}
	return req, nil
}

// MaxTopicName is the longest name, in bytes, REGISTER gives a new topic.
const MaxTopicName = 255

// CheckTopicName reports whether REGISTER may create a topic of this name:
// 1 to MaxTopicName bytes of UTF-8 without white space (requests split on
// spaces, and trim the rest) or control characters (a name is one line in
// logs and in the CLI's output). The reference took any name; topics
// named otherwise before this rule are still served.
func CheckTopicName(name string) bool {
	if name == "" || len(name) > MaxTopicName || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func appendRef(dst []byte, req *Request) []byte {
	if req.Topic != "" || req.HasPayload {
		dst = append(dst, ' ')
		dst = append(dst, req.Topic...)
	}
	if req.HasPayload {
		dst = append(dst, ' ')
		dst = append(dst, req.Payload...)
	}
	return dst
}

func appendRegister(dst []byte, req *Request) []byte {
	if !req.HasPayload && req.RF > 0 {
		dst = append(dst, ' ')
		dst = append(dst, req.Topic...)
		dst = append(dst, " rf="...)
		return strconv.AppendUint(dst, uint64(req.RF), 10)
	}
	return appendRef(dst, req)
}

// --- additive text commands ---------------------------------------------

// fields splits args on single spaces into at most len(out) fields and
// reports how many it found, or -1 when there are more than len(out).
// Empty fields (two spaces in a row) are kept, and then fail validation.
func fields(args []byte, hasArgs bool, out [][]byte) int {
	if !hasArgs {
		return 0
	}
	for i := range out {
		f, rest, more := bytes.Cut(args, space)
		out[i] = f
		if !more {
			return i + 1
		}
		args = rest
	}
	return -1
}

func topicArg(cmd string, req *Request, f []byte) error {
	if len(f) == 0 {
		return errRequires(cmd, "a topic")
	}
	req.Topic = string(f)
	return nil
}

func groupArg(cmd string, req *Request, f []byte) error {
	if len(f) == 0 {
		return errRequires(cmd, "a group")
	}
	req.Group = string(f)
	return nil
}

func offsetArg(cmd string, req *Request, f []byte) error {
	n, ok := parseUint(f)
	if !ok {
		return errNonNegative(cmd, "offset")
	}
	req.Offset = n
	return nil
}

func maxArg(cmd string, req *Request, f []byte) error {
	n, ok := parseUint(f)
	if !ok || n < 1 || n > MaxReadMax {
		return errRange(cmd, "max", 1, MaxReadMax)
	}
	req.Max = int(n)
	return nil
}

func waitArg(cmd string, req *Request, f []byte) error {
	n, ok := parseUint(f)
	if !ok || n > uint64(MaxWait/time.Millisecond) {
		return errRange(cmd, "wait_ms", 0, uint64(MaxWait/time.Millisecond))
	}
	req.Wait = time.Duration(n) * time.Millisecond
	return nil
}

// READ <topic> <offset> [max]
func parseRead(args []byte, hasArgs bool) (req Request, err error) {
	var f [3][]byte
	n := fields(args, hasArgs, f[:])
	if n < 0 {
		return req, errTooMany(CmdRead)
	}
	if n < 1 {
		return req, errRequires(CmdRead, "a topic")
	}
	if err = topicArg(CmdRead, &req, f[0]); err != nil {
		return req, err
	}
	if n < 2 {
		return req, errRequires(CmdRead, "an offset")
	}
	if err = offsetArg(CmdRead, &req, f[1]); err != nil {
		return req, err
	}
	req.Max = DefaultReadMax
	if n > 2 {
		err = maxArg(CmdRead, &req, f[2])
		return req, err
	}
	return req, nil
}

func appendRead(dst []byte, req *Request) []byte {
	dst = appendTopicOnly(dst, req)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, req.Offset, 10)
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, int64(req.Max), 10)
}

// GROUPREAD <topic> <group> [max] [wait_ms]
func parseGroupRead(args []byte, hasArgs bool) (req Request, err error) {
	var f [4][]byte
	n := fields(args, hasArgs, f[:])
	if n < 0 {
		return req, errTooMany(CmdGroupRead)
	}
	if n < 1 {
		return req, errRequires(CmdGroupRead, "a topic")
	}
	if err = topicArg(CmdGroupRead, &req, f[0]); err != nil {
		return req, err
	}
	if n < 2 {
		return req, errRequires(CmdGroupRead, "a group")
	}
	if err = groupArg(CmdGroupRead, &req, f[1]); err != nil {
		return req, err
	}
	req.Max = DefaultReadMax
	if n > 2 {
		if err = maxArg(CmdGroupRead, &req, f[2]); err != nil {
			return req, err
		}
	}
	if n > 3 {
		err = waitArg(CmdGroupRead, &req, f[3])
		return req, err
	}
	return req, nil
}

func appendGroupRead(dst []byte, req *Request) []byte {
	dst = appendTopicOnly(dst, req)
	dst = append(dst, ' ')
	dst = append(dst, req.Group...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(req.Max), 10)
	if req.Wait != 0 {
		// a negative wait is sent as is: the server refuses it with its
		// own text, as it does GETW's
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(req.Wait/time.Millisecond), 10)
	}
	return dst
}

// COMMIT <topic> <group> <offset>
func parseCommit(args []byte, hasArgs bool) (req Request, err error) {
	var f [3][]byte
	n := fields(args, hasArgs, f[:])
	if n < 0 {
		return req, errTooMany(CmdCommit)
	}
	if n < 1 {
		return req, errRequires(CmdCommit, "a topic")
	}
	if err = topicArg(CmdCommit, &req, f[0]); err != nil {
		return req, err
	}
	if n < 2 {
		return req, errRequires(CmdCommit, "a group")
	}
	if err = groupArg(CmdCommit, &req, f[1]); err != nil {
		return req, err
	}
	if n < 3 {
		return req, errRequires(CmdCommit, "an offset")
	}
	err = offsetArg(CmdCommit, &req, f[2])
	return req, err
}

func appendCommit(dst []byte, req *Request) []byte {
	dst = appendTopicOnly(dst, req)
	dst = append(dst, ' ')
	dst = append(dst, req.Group...)
	dst = append(dst, ' ')
	return strconv.AppendUint(dst, req.Offset, 10)
}

// LEADER <topic>
func parseLeader(args []byte, hasArgs bool) (req Request, err error) {
	var f [1][]byte
	n := fields(args, hasArgs, f[:])
	if n < 0 {
		return req, errTooMany(CmdLeader)
	}
	if n < 1 {
		return req, errRequires(CmdLeader, "a topic")
	}
	err = topicArg(CmdLeader, &req, f[0])
	return req, err
}

func appendTopicOnly(dst []byte, req *Request) []byte {
	dst = append(dst, ' ')
	return append(dst, req.Topic...)
}

// GETW <topic> <wait_ms>
func parseGetW(args []byte, hasArgs bool) (req Request, err error) {
	var f [2][]byte
	n := fields(args, hasArgs, f[:])
	if n < 0 {
		return req, errTooMany(CmdGetW)
	}
	if n < 1 {
		return req, errRequires(CmdGetW, "a topic")
	}
	if err = topicArg(CmdGetW, &req, f[0]); err != nil {
		return req, err
	}
	if n < 2 {
		return req, errRequires(CmdGetW, "wait_ms")
	}
	err = waitArg(CmdGetW, &req, f[1])
	return req, err
}

func appendGetW(dst []byte, req *Request) []byte {
	dst = appendTopicOnly(dst, req)
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, int64(req.Wait/time.Millisecond), 10)
}

// --- MPUT: binary batch ----------------------------------------------------

// MPUT <topic> <count>\n then count entries, each [u32 LE length][bytes],
// nothing after the last. Entries are non-empty. The body is not trimmed.
func parseMPut(args []byte, hasArgs bool) (req Request, err error) {
	topic, rest, hasCount := bytes.Cut(args, space)
	if !hasArgs || len(topic) == 0 {
		return req, errRequires(CmdMPut, "a topic")
	}
	req.Topic = string(topic)
	if !hasCount || len(rest) == 0 {
		return req, errRequires(CmdMPut, "a count")
	}
	countText, rest, hasNL := bytes.Cut(rest, []byte{'\n'})
	count, ok := parseUint(countText)
	if !ok || count < 1 || count > MaxMPutEntries {
		return req, errRange(CmdMPut, "count", 1, MaxMPutEntries)
	}
	if !hasNL {
		return req, errRequires(CmdMPut, "a newline after the count")
	}
	// Each entry takes at least 4 bytes: never allocate for more entries
	// than the body can hold.
	req.Entries = make([][]byte, 0, min(count, uint64(len(rest)/4)))
	for i := uint64(1); i <= count; i++ {
		if len(rest) < 4 {
			return req, mputTruncated(i, count)
		}
		n := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if n == 0 {
			return req, &Error{CmdMPut + " entry " + strconv.FormatUint(i, 10) + " of " +
				strconv.FormatUint(count, 10) + " is empty"}
		}
		if uint64(n) > uint64(len(rest)) {
			return req, mputTruncated(i, count)
		}
		req.Entries = append(req.Entries, rest[:n:n])
		rest = rest[n:]
	}
	if len(rest) > 0 {
		return req, &Error{CmdMPut + " has bytes after entry " + strconv.FormatUint(count, 10)}
	}
	return req, nil
}

func mputTruncated(i, count uint64) *Error {
	return &Error{CmdMPut + " entry " + strconv.FormatUint(i, 10) + " of " +
		strconv.FormatUint(count, 10) + " is truncated"}
}

func appendMPut(dst []byte, req *Request) []byte {
	dst = appendTopicOnly(dst, req)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(req.Entries)), 10)
	dst = append(dst, '\n')
	for _, e := range req.Entries {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(e)))
		dst = append(dst, e...)
	}
	return dst
}

// parseUint parses a non-empty run of ASCII digits (no sign, no
// separators) that fits in a uint64.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// --- administration ---------------------------------------------------------

func parseNodes(args []byte, hasArgs bool) (req Request, err error) {
	if hasArgs {
		return req, errTooMany(CmdNodes)
	}
	return req, nil
}

// parseRemoveNode reads "REMOVENODE <id>": the node id goes in Offset.
func parseRemoveNode(args []byte, hasArgs bool) (req Request, err error) {
	var f [1][]byte
	n := fields(args, hasArgs, f[:])
	if n < 0 {
		return req, errTooMany(CmdRemoveNode)
	}
	if n < 1 {
		return req, errRequires(CmdRemoveNode, "a node id")
	}
	id, ok := parseUint(f[0])
	if !ok || id == 0 {
		return req, &Error{CmdRemoveNode + " node id must be a positive integer"}
	}
	req.Offset = id
	return req, nil
}

func appendRemoveNode(dst []byte, req *Request) []byte {
	dst = append(dst, ' ')
	return strconv.AppendUint(dst, req.Offset, 10)
}

// parseRetention reads "RETENTION <topic> [max_age_ms=N] [max_bytes=N]
// [max_segments=N]": the whole policy (an option left out is unlimited).
func parseRetention(args []byte, hasArgs bool) (req Request, err error) {
	var f [4][]byte
	n := fields(args, hasArgs, f[:])
	if n < 0 {
		return req, errTooMany(CmdRetention)
	}
	if n < 1 {
		return req, errRequires(CmdRetention, "a topic")
	}
	if err := topicArg(CmdRetention, &req, f[0]); err != nil {
		return req, err
	}
	seen := map[string]bool{}
	for _, opt := range f[1:n] {
		key, val, ok := bytes.Cut(opt, []byte("="))
		v, num := parseUint(val)
		if !ok || !num || v > math.MaxInt64 {
			return req, &Error{CmdRetention + " option " + strconv.Quote(string(opt)) + " must be max_age_ms=N, max_bytes=N or max_segments=N"}
		}
		if seen[string(key)] {
			return req, &Error{CmdRetention + " option " + string(key) + " given twice"}
		}
		seen[string(key)] = true
		switch string(key) {
		case "max_age_ms":
			req.Retention.MaxAgeMs = v
		case "max_bytes":
			req.Retention.MaxBytes = v
		case "max_segments":
			req.Retention.MaxSegments = v
		default:
			return req, &Error{CmdRetention + " option " + strconv.Quote(string(opt)) + " must be max_age_ms=N, max_bytes=N or max_segments=N"}
		}
	}
	return req, nil
}

func appendRetention(dst []byte, req *Request) []byte {
	dst = append(dst, ' ')
	dst = append(dst, req.Topic...)
	for _, o := range []struct {
		k string
		v uint64
	}{{"max_age_ms", req.Retention.MaxAgeMs}, {"max_bytes", req.Retention.MaxBytes}, {"max_segments", req.Retention.MaxSegments}} {
		if o.v > 0 {
			dst = append(dst, ' ')
			dst = append(dst, o.k...)
			dst = append(dst, '=')
			dst = strconv.AppendUint(dst, o.v, 10)
		}
	}
	return dst
}
