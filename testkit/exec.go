package testkit

import (
	"errors"
	"strconv"
	"strings"

	"github.com/walrus-go/walrus/wire"
)

// Request renders an op as a client protocol request (wire's encoder, so
// the simulated clients and the node cannot disagree on the format).
func (o *Op) Request() []byte {
	req := wire.Request{Topic: o.Topic}
	switch o.Kind {
	case OpRegister:
		req.Cmd = wire.CmdRegister
	case OpPut:
		req.Cmd, req.Payload, req.HasPayload = wire.CmdPut, []byte(o.Payload), true
	case OpMPut:
		req.Cmd, req.Entries = wire.CmdMPut, [][]byte{[]byte(o.Payload)}
	case OpGet:
		req.Cmd = wire.CmdGet
		if o.Wait > 0 {
			req.Cmd, req.Wait = wire.CmdGetW, o.Wait
		}
	case OpRead:
		req.Cmd, req.Offset, req.Max = wire.CmdRead, o.Offset, max(o.Max, 1)
	default:
		panic("unknown op")
	}
	return wire.AppendRequest(nil, &req)
}

// isDefiniteWriteError reports whether an ERR reply to a write says that
// nothing was written. The protocol promises this for the parser's errors,
// "unknown topic" and NotLeaderForPartition (refused before an offset was
// assigned); an error that says "outcome unknown" says the opposite. Any
// other error is taken at its word: definite (the checker reports a write
// answered so that shows up in the log).
func isDefiniteWriteError(msg string) bool {
	return !strings.Contains(msg, "outcome unknown")
}

// apply fills o's outcome from a reply (or the error of Client.Do).
func (o *Op) apply(reply []byte, err error) {
	if err != nil {
		o.Err = err.Error()
		if errors.Is(err, ErrNotSent) {
			o.Status = StFail
		} else {
			o.Status = StUnknown
		}
		return
	}
	r := wire.ParseReply(reply)
	switch r.Kind {
	case wire.ReplyErr:
		o.Err = string(r.Payload)
		o.Status = StUnknown
		if o.Kind.IsWrite() && isDefiniteWriteError(o.Err) || o.Kind == OpRegister || o.Kind == OpRead {
			o.Status = StFail
		}
		return
	case wire.ReplyEmpty:
		o.Status = StEmpty
		return
	case wire.ReplyOK:
	default:
		o.Status = StUnknown
		o.Err = "unexpected reply " + strconv.Quote(string(reply))
		return
	}
	o.Status = StOK
	switch o.Kind {
	case OpMPut:
		f := strings.Fields(string(r.Payload))
		if len(f) != 2 {
			o.Status, o.Err = StUnknown, "bad MPUT reply "+strconv.Quote(string(reply))
			return
		}
		first, e1 := strconv.ParseUint(f[0], 10, 64)
		n, e2 := strconv.ParseUint(f[1], 10, 64)
		if e1 != nil || e2 != nil || n != 1 {
			o.Status, o.Err = StUnknown, "bad MPUT reply "+strconv.Quote(string(reply))
			return
		}
		o.HasFirst, o.First = true, first
	case OpGet:
		o.Values = []string{string(r.Payload)}
	case OpRead:
		first, ents, perr := wire.ParseBatchReply(r.Payload)
		if perr != nil {
			o.Status, o.Err = StUnknown, "bad READ reply "+strconv.Quote(string(reply))
			return
		}
		o.HasFirst, o.First = true, first
		for _, e := range ents {
			o.Values = append(o.Values, string(e))
		}
	}
}
