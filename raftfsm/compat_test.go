package raftfsm

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The STATE example from COMPAT.md, verbatim.
const compatExample = `{"current_segment":3,"leader_node":1,"last_sealed_entry_offset":1950000,
 "sealed_segments":{"1":1000000,"2":950000},"segment_leaders":{"1":2,"2":3,"3":1}}`

// compatTopic builds COMPAT.md's example: three live nodes, segment 1 led by
// node 2, segments 1 and 2 sealed at 1000000 and 950000, segment 3 active.
func compatTopic(t *testing.T) *Topic {
	h := cluster(t, 1, 2, 3)
	h.ok(CreateTopic{Name: "other", RF: 3}) // takes node 1's turn
	h.ok(CreateTopic{Name: "logs", RF: 3})
	h.seal("logs", 1000000)
	h.seal("logs", 950000)
	h.ok(CommitCursor{Topic: "logs", Offset: 42})
	return h.topic("logs")
}

func TestCompatStateMatchesExample(t *testing.T) {
	got, err := json.Marshal(CompatState(compatTopic(t)))
	if err != nil {
		t.Fatal(err)
	}
	// Same keys and values as the reference's example...
	var want, have map[string]any
	if err := json.Unmarshal([]byte(compatExample), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &have); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if !reflect.DeepEqual(have[k], v) {
			t.Errorf("key %q: got %v, want %v", k, have[k], v)
		}
	}
	// ...in the same order and bytes, followed only by our additions.
	prefix := strings.ReplaceAll(strings.TrimSuffix(compatExample, "}"), "\n ", "")
	if !strings.HasPrefix(string(got), prefix+",") {
		t.Fatalf("STATE JSON\n got %s\nwant prefix %s", got, prefix)
	}
	const golden = `{"current_segment":3,"leader_node":1,"last_sealed_entry_offset":1950000,` +
		`"sealed_segments":{"1":1000000,"2":950000},"segment_leaders":{"1":2,"2":3,"3":1},` +
		`"replicas":{"1":[2,3,1],"2":[3,1,2],"3":[1,2,3]},"epoch":1,"segment_state":"open",` +
		`"rf":3,"cursor":42,"first_offset":0}`
	if string(got) != golden {
		t.Fatalf("STATE JSON\n got %s\nwant %s", got, golden)
	}
}

func TestCompatStateFreshTopic(t *testing.T) {
	h := cluster(t, 1)
	h.ok(CreateTopic{Name: "t", RF: 1})
	got, _ := json.Marshal(CompatState(h.topic("t")))
	const want = `{"current_segment":1,"leader_node":1,"last_sealed_entry_offset":0,` +
		`"sealed_segments":{},"segment_leaders":{"1":1},"replicas":{"1":[1]},"epoch":1,` +
		`"segment_state":"open","rf":1,"cursor":0,"first_offset":0}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// Marshalling does not depend on map iteration order, and the JSON value
// shares no slice with the state.
func TestCompatStateDeterministic(t *testing.T) {
	tp := compatTopic(t)
	first, _ := json.Marshal(CompatState(tp))
	for range 50 {
		again, _ := json.Marshal(CompatState(tp))
		if string(again) != string(first) {
			t.Fatalf("STATE JSON changed:\n%s\n%s", first, again)
		}
	}
	c := CompatState(tp)
	c.Replicas["3"][0] = 99
	if tp.Active().Replicas[0] == 99 {
		t.Fatal("CompatState aliases the state's replica slice")
	}
}
