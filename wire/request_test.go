package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRequestReferenceCommands(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Request
	}{
		{"REGISTER logs", Request{Cmd: CmdRegister, Topic: "logs"}},
		{"REGISTER logs\r\n", Request{Cmd: CmdRegister, Topic: "logs"}},
		{"REGISTER " + strings.Repeat("t", 255), Request{Cmd: CmdRegister, Topic: strings.Repeat("t", 255)}},
		{"REGISTER café/λ-1", Request{Cmd: CmdRegister, Topic: "café/λ-1"}},
		{"PUT logs hello", Request{Cmd: CmdPut, Topic: "logs", Payload: b("hello"), HasPayload: true}},
		{"PUT logs hello world  again", Request{Cmd: CmdPut, Topic: "logs", Payload: b("hello world  again"), HasPayload: true}},
		{"PUT logs  lead", Request{Cmd: CmdPut, Topic: "logs", Payload: b(" lead"), HasPayload: true}},
		{"PUT logs hello \t\r\n", Request{Cmd: CmdPut, Topic: "logs", Payload: b("hello"), HasPayload: true}},
		{"PUT logs x\v\f", Request{Cmd: CmdPut, Topic: "logs", Payload: b("x"), HasPayload: true}},
		{"PUT logs x\u00a0\u3000", Request{Cmd: CmdPut, Topic: "logs", Payload: b("x"), HasPayload: true}},
		{"PUT logs \x00\xff\xfe binary\x00", Request{Cmd: CmdPut, Topic: "logs", Payload: b("\x00\xff\xfe binary\x00"), HasPayload: true}},
		{"PUT logs x\xa0", Request{Cmd: CmdPut, Topic: "logs", Payload: b("x\xa0"), HasPayload: true}}, // invalid UTF-8 is not trimmed
		{"PUT  x", Request{Cmd: CmdPut, Topic: "", Payload: b("x"), HasPayload: true}},
		{"GET logs", Request{Cmd: CmdGet, Topic: "logs"}},
		{"GET logs ignored rest", Request{Cmd: CmdGet, Topic: "logs", Payload: b("ignored rest"), HasPayload: true}},
		{"STATE logs", Request{Cmd: CmdState, Topic: "logs"}},
		{"METRICS", Request{Cmd: CmdMetrics}},
		{"METRICS\n", Request{Cmd: CmdMetrics}},
		{"METRICS whatever", Request{Cmd: CmdMetrics, Topic: "whatever"}},
	} {
		got, err := ParseRequest([]byte(tc.in))
		if err != nil {
			t.Errorf("ParseRequest(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRequest(%q) =\n %#v, want\n %#v", tc.in, got, tc.want)
		}
	}
}

func TestParseRequestReferenceErrors(t *testing.T) {
	bad := "REGISTER topic must be 1 to 255 bytes of UTF-8 without white space or control characters"
	for _, tc := range []struct{ in, msg string }{
		{"", "unknown command"},
		{"   \r\n", "unknown command"},
		{"put logs x", "unknown command"},
		{"Put logs x", "unknown command"},
		{"PUTX logs x", "unknown command"},
		{" PUT logs x", "unknown command"},
		{"PUT\tlogs x", "unknown command"},
		{"REGISTER", "REGISTER requires a topic"},
		{"REGISTER \n", "REGISTER requires a topic"},
		{"PUT", "PUT requires a topic"},
		{"PUT logs", "PUT requires a payload"},
		{"PUT logs ", "PUT requires a payload"},
		{"PUT logs   \r\n", "PUT requires a payload"},
		{"GET", "GET requires a topic"},
		{"GET ", "GET requires a topic"},
		{"STATE", "STATE requires a topic"},
		{"REGISTER  logs", bad},                       // the topic is the empty word
		{"REGISTER " + strings.Repeat("t", 256), bad}, // one byte too long
		{"REGISTER a\x00b", bad},                      // control character
		{"REGISTER a\nb", bad},                        // a line break inside
		{"REGISTER a\u00a0b", bad},                    // white space other than ' '
		{"REGISTER \xff\xfe", bad},                    // not UTF-8
	} {
		_, err := ParseRequest([]byte(tc.in))
		var we *Error
		if !errors.As(err, &we) || we.Msg != tc.msg {
			t.Errorf("ParseRequest(%q) error = %v, want %q", tc.in, err, tc.msg)
		}
	}
}

func TestParseRequestErrorsAreComparable(t *testing.T) {
	_, err := ParseRequest([]byte("PUT logs"))
	if !errors.Is(err, ErrPutRequiresPayload) {
		t.Fatalf("errors.Is(%v, ErrPutRequiresPayload) = false", err)
	}
	if !errors.Is(&Error{"PUT requires a payload"}, ErrPutRequiresPayload) {
		t.Fatal("equal messages do not compare equal")
	}
	if errors.Is(err, ErrPutRequiresTopic) {
		t.Fatal("different messages compare equal")
	}
}

func TestParseRequestAdditiveCommands(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Request
	}{
		{"REGISTER logs rf=3", Request{Cmd: CmdRegister, Topic: "logs", Payload: b("rf=3"), HasPayload: true, RF: 3}},
		{"REGISTER logs other rf=1 stuff", Request{Cmd: CmdRegister, Topic: "logs", Payload: b("other rf=1 stuff"), HasPayload: true, RF: 1}},
		{"REGISTER logs whatever", Request{Cmd: CmdRegister, Topic: "logs", Payload: b("whatever"), HasPayload: true}},
		{"READ logs 0", Request{Cmd: CmdRead, Topic: "logs", Offset: 0, Max: DefaultReadMax}},
		{"READ logs 18446744073709551615 10000", Request{Cmd: CmdRead, Topic: "logs", Offset: 1<<64 - 1, Max: 10000}},
		{"READ logs 42 7\n", Request{Cmd: CmdRead, Topic: "logs", Offset: 42, Max: 7}},
		{"GROUPREAD logs g1", Request{Cmd: CmdGroupRead, Topic: "logs", Group: "g1", Max: DefaultReadMax}},
		{"GROUPREAD logs g1 50", Request{Cmd: CmdGroupRead, Topic: "logs", Group: "g1", Max: 50}},
		{"GROUPREAD logs g1 50 250", Request{Cmd: CmdGroupRead, Topic: "logs", Group: "g1", Max: 50, Wait: 250 * time.Millisecond}},
		{"COMMIT logs g1 1000", Request{Cmd: CmdCommit, Topic: "logs", Group: "g1", Offset: 1000}},
		{"LEADER logs", Request{Cmd: CmdLeader, Topic: "logs"}},
		{"GETW logs 0", Request{Cmd: CmdGetW, Topic: "logs"}},
		{"GETW logs 300000", Request{Cmd: CmdGetW, Topic: "logs", Wait: 5 * time.Minute}},
		{"MPUT logs 2\n\x05\x00\x00\x00hello\x06\x00\x00\x00 w\x00r \n",
			Request{Cmd: CmdMPut, Topic: "logs", Entries: [][]byte{b("hello"), b(" w\x00r \n")}}},
	} {
		got, err := ParseRequest([]byte(tc.in))
		if err != nil {
			t.Errorf("ParseRequest(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRequest(%q) =\n %#v, want\n %#v", tc.in, got, tc.want)
		}
	}
}

func TestParseRequestAdditiveErrors(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"REGISTER logs rf=0", "REGISTER rf must be an integer from 1 to 255"},
		{"REGISTER logs rf=256", "REGISTER rf must be an integer from 1 to 255"},
		{"REGISTER logs rf=x", "REGISTER rf must be an integer from 1 to 255"},
		{"REGISTER logs rf=", "REGISTER rf must be an integer from 1 to 255"},

		{"READ", "READ requires a topic"},
		{"READ  5", "READ requires a topic"},
		{"READ logs", "READ requires an offset"},
		{"READ logs -1", "READ offset must be a non-negative integer"},
		{"READ logs +1", "READ offset must be a non-negative integer"},
		{"READ logs 1e3", "READ offset must be a non-negative integer"},
		{"READ logs 18446744073709551616", "READ offset must be a non-negative integer"},
		{"READ logs  5", "READ offset must be a non-negative integer"},
		{"READ logs 5 0", "READ max must be an integer from 1 to 10000"},
		{"READ logs 5 10001", "READ max must be an integer from 1 to 10000"},
		{"READ logs 5 many", "READ max must be an integer from 1 to 10000"},
		{"READ logs 5 10 extra", "READ has too many arguments"},

		{"GROUPREAD", "GROUPREAD requires a topic"},
		{"GROUPREAD logs", "GROUPREAD requires a group"},
		{"GROUPREAD logs  5", "GROUPREAD requires a group"},
		{"GROUPREAD logs g 0", "GROUPREAD max must be an integer from 1 to 10000"},
		{"GROUPREAD logs g 1 300001", "GROUPREAD wait_ms must be an integer from 0 to 300000"},
		{"GROUPREAD logs g 1 -5", "GROUPREAD wait_ms must be an integer from 0 to 300000"},
		{"GROUPREAD logs g 1 5 x", "GROUPREAD has too many arguments"},

		{"COMMIT", "COMMIT requires a topic"},
		{"COMMIT logs", "COMMIT requires a group"},
		{"COMMIT logs g", "COMMIT requires an offset"},
		{"COMMIT logs g x", "COMMIT offset must be a non-negative integer"},
		{"COMMIT logs g 1 2", "COMMIT has too many arguments"},

		{"LEADER", "LEADER requires a topic"},
		{"LEADER logs x", "LEADER has too many arguments"},

		{"GETW", "GETW requires a topic"},
		{"GETW logs", "GETW requires wait_ms"},
		{"GETW logs soon", "GETW wait_ms must be an integer from 0 to 300000"},
		{"GETW logs 1 2", "GETW has too many arguments"},

		{"MPUT", "MPUT requires a topic"},
		{"MPUT \n", "MPUT requires a topic"},
		{"MPUT  1\n", "MPUT requires a topic"},
		{"MPUT logs", "MPUT requires a count"},
		{"MPUT logs ", "MPUT requires a count"},
		{"MPUT logs 0\n", "MPUT count must be an integer from 1 to 10000"},
		{"MPUT logs 10001\n", "MPUT count must be an integer from 1 to 10000"},
		{"MPUT logs two\n", "MPUT count must be an integer from 1 to 10000"},
		{"MPUT logs 1", "MPUT requires a newline after the count"},
		{"MPUT logs 1\n", "MPUT entry 1 of 1 is truncated"},
		{"MPUT logs 1\n\x05\x00\x00\x00hell", "MPUT entry 1 of 1 is truncated"},
		{"MPUT logs 2\n\x01\x00\x00\x00a\x05\x00\x00\x00hell", "MPUT entry 2 of 2 is truncated"},
		{"MPUT logs 3\n\x01\x00\x00\x00a\x01\x00\x00\x00b", "MPUT entry 3 of 3 is truncated"},
		{"MPUT logs 2\n\x00\x00\x00\x00\x01\x00\x00\x00b", "MPUT entry 1 of 2 is empty"},
		{"MPUT logs 1\n\x01\x00\x00\x00ab", "MPUT has bytes after entry 1"},
		{"MPUT logs 1\n\x01\x00\x00\x00a\n", "MPUT has bytes after entry 1"},
	} {
		_, err := ParseRequest([]byte(tc.in))
		var we *Error
		if !errors.As(err, &we) || we.Msg != tc.msg {
			t.Errorf("ParseRequest(%q) error = %v, want %q", tc.in, err, tc.msg)
		}
	}
}

func TestAppendRequestRoundTrips(t *testing.T) {
	for _, req := range []Request{
		{Cmd: CmdRegister, Topic: "logs"},
		{Cmd: CmdPut, Topic: "logs", Payload: b("a b  c\x00\xff"), HasPayload: true},
		{Cmd: CmdGet, Topic: "logs"},
		{Cmd: CmdState, Topic: "logs"},
		{Cmd: CmdMetrics},
		{Cmd: CmdRead, Topic: "t", Offset: 99, Max: 3},
		{Cmd: CmdGroupRead, Topic: "t", Group: "g", Max: 10, Wait: time.Second},
		{Cmd: CmdGroupRead, Topic: "t", Group: "g", Max: 1},
		{Cmd: CmdCommit, Topic: "t", Group: "g", Offset: 12},
		{Cmd: CmdLeader, Topic: "t"},
		{Cmd: CmdGetW, Topic: "t", Wait: 1500 * time.Millisecond},
		{Cmd: CmdMPut, Topic: "t", Entries: [][]byte{b("one"), b("two \n"), b(strings.Repeat("x", 1000))}},
	} {
		body := AppendRequest(nil, &req)
		got, err := ParseRequest(body)
		if err != nil {
			t.Errorf("ParseRequest(AppendRequest(%#v)) = %q: %v", req, body, err)
			continue
		}
		if !reflect.DeepEqual(got, req) {
			t.Errorf("round trip of %q:\n got %#v\nwant %#v", body, got, req)
		}
	}
	// REGISTER's option travels in the payload.
	body := AppendRequest(nil, &Request{Cmd: CmdRegister, Topic: "logs", RF: 3})
	if string(body) != "REGISTER logs rf=3" {
		t.Fatalf("AppendRequest(REGISTER rf=3) = %q", body)
	}
}

func TestAppendRequestPanicsOnUnknownCommand(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	AppendRequest(nil, &Request{Cmd: "NOPE"})
}

func TestParseRequestAllocations(t *testing.T) {
	body := []byte("PUT logs hello world")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseRequest(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 { // the topic string
		t.Fatalf("ParseRequest(PUT) allocates %.1f times, want <= 1", allocs)
	}
}

func b(s string) []byte { return []byte(s) }

func TestAdministrationCommands(t *testing.T) {
	for body, want := range map[string]string{
		"NODES x":        "NODES has too many arguments",
		"REMOVENODE":     "REMOVENODE requires a node id",
		"REMOVENODE 0":   "REMOVENODE node id must be a positive integer",
		"REMOVENODE x":   "REMOVENODE node id must be a positive integer",
		"REMOVENODE 1 2": "REMOVENODE has too many arguments",
	} {
		if _, err := ParseRequest([]byte(body)); err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %q", body, err, want)
		}
	}
	r, err := ParseRequest([]byte("REMOVENODE 4"))
	if err != nil || r.Cmd != CmdRemoveNode || r.Offset != 4 {
		t.Fatalf("%+v %v", r, err)
	}
	if got := string(AppendRequest(nil, &r)); got != "REMOVENODE 4" {
		t.Fatalf("round trip: %q", got)
	}
	if r, err := ParseRequest([]byte("NODES")); err != nil || r.Cmd != CmdNodes {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestRetentionCommand(t *testing.T) {
	r, err := ParseRequest([]byte("RETENTION logs max_segments=3 max_age_ms=60000"))
	if err != nil || r.Topic != "logs" || r.Retention != (RetentionPolicy{MaxAgeMs: 60000, MaxSegments: 3}) {
		t.Fatalf("%+v %v", r, err)
	}
	if got := string(AppendRequest(nil, &r)); got != "RETENTION logs max_age_ms=60000 max_segments=3" {
		t.Fatalf("round trip %q", got)
	}
	if r, err := ParseRequest([]byte("RETENTION logs")); err != nil || r.Retention != (RetentionPolicy{}) {
		t.Fatalf("clearing the policy: %+v %v", r, err)
	}
	for body, want := range map[string]string{
		"RETENTION":                           "RETENTION requires a topic",
		"RETENTION t size=3":                  `RETENTION option "size=3" must be max_age_ms=N, max_bytes=N or max_segments=N`,
		"RETENTION t max_bytes=-1":            `RETENTION option "max_bytes=-1" must be max_age_ms=N, max_bytes=N or max_segments=N`,
		"RETENTION t max_bytes=1 max_bytes=2": "RETENTION option max_bytes given twice",
		"RETENTION t max_bytes=1 max_age_ms=1 max_segments=1 x": "RETENTION has too many arguments",
	} {
		if _, err := ParseRequest([]byte(body)); err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %q", body, err, want)
		}
	}
}
