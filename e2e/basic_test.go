package e2e

import (
	"fmt"
	"testing"
)

// Scenario 1: REGISTER is idempotent, PUT never creates a topic, GET
// returns entries in write order and then EMPTY.
func TestRegisterPutGet(t *testing.T) {
	c := startCluster(t, 3, clusterOpts{})
	a := c.dial(1)

	a.mustDo("REGISTER logs", "OK")
	a.mustDo("REGISTER logs", "OK")
	a.mustDo("PUT nope x", "ERR unknown topic nope")

	for i := range 5 {
		a.mustDo(fmt.Sprintf("PUT logs entry-%d", i), "OK")
	}
	for i := range 5 {
		a.mustDo("GET logs", fmt.Sprintf("OK entry-%d", i))
	}
	a.mustDo("GET logs", "EMPTY")
	a.mustDo("GET logs", "EMPTY")
}
