package client

import (
	"reflect"
	"slices"
	"testing"

	"github.com/walrus-go/walrus/actors"
)

// TestStateHasEveryKeyTheServerSends: State is the client's typed copy of
// the server's STATE reply (actors.StateJSON, with integer map keys for
// users); a key added on one side only would be silently dropped or never
// filled.
func TestStateHasEveryKeyTheServerSends(t *testing.T) {
	var keys func(typ reflect.Type) []string
	keys = func(typ reflect.Type) []string {
		var out []string
		for f := range typ.Fields() {
			if f.Anonymous { // embedded: its keys are the outer object's
				out = append(out, keys(f.Type)...)
			} else if tag := f.Tag.Get("json"); tag != "" && tag != "-" {
				out = append(out, tag)
			}
		}
		slices.Sort(out)
		return out
	}
	server, client := keys(reflect.TypeFor[actors.StateJSON]()), keys(reflect.TypeFor[State]())
	if !slices.Equal(server, client) {
		t.Fatalf("STATE keys differ:\nserver %v\nclient %v", server, client)
	}
}
