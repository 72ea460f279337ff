package client

import (
	"reflect"
	"slices"
	"testing"

	"github.com/walrus-go/walrus/raftfsm"
)

// TestStateHasEveryKeyTheServerSends: State is the client's typed copy of
// the server's STATE reply (raftfsm.CompatStateJSON, with integer map keys
// for users); a key added on one side only would be silently dropped or
// never filled.
func TestStateHasEveryKeyTheServerSends(t *testing.T) {
	keys := func(typ reflect.Type) []string {
		var out []string
		for f := range typ.Fields() {
			if tag := f.Tag.Get("json"); tag != "" && tag != "-" {
				out = append(out, tag)
			}
		}
		slices.Sort(out)
		return out
	}
	server, client := keys(reflect.TypeFor[raftfsm.CompatStateJSON]()), keys(reflect.TypeFor[State]())
	if !slices.Equal(server, client) {
		t.Fatalf("STATE keys differ:\nserver %v\nclient %v", server, client)
	}
}
