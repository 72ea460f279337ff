package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 5: a node loses its whole data directory and comes back empty;
// re-replication gives it every sealed segment again. Two rounds on one
// cluster, on two different nodes:
//
//  1. Producers write through the two other nodes to a topic whose
//     segments seal every 100 entries (so every node leads some, and
//     every node is a replica of all of them: RF 3 on 3 nodes).
//  2. Once the victim W leads the active segment (STATE: 10 to 50 entries
//     in it), W is killed (SIGKILL) and its <data-dir>/node_<id>/ deleted.
//     Round 1 starts it again at once, empty, before the failure detector
//     can act: W itself must notice it led the open segment and seal it
//     through recovery. Round 2 first waits until writes flow again
//     (the raft leader recovered W's segment; segments opened meanwhile
//     have the two live nodes as replicas), then starts W.
//  3. W starts with --join (it cannot bootstrap, even if it was node 1);
//     the producers go on, then stop. The history so far checks out
//     against the log (checkHistory), and READ through every node gives
//     that log.
//  4. Wait until every sealed segment names W as a replica again (those
//     opened while it was down are topped up to RF 3) and W's disk holds
//     them all, sealed (its walrus_segments{state="sealed"} gauge equals
//     the number of sealed segments).
//  5. Stop the two other nodes. W alone serves READ of every sealed
//     segment, and each matches the log. Start them again.
//
// Why step 5 is a sound check that W holds the data: READ of a sealed
// segment is served by the node asked if it is a replica (its segment
// actor reads its own WAL), and only on failure by another live replica;
// with the others stopped there is no other, so every entry W returns
// came from W's own disk. W needs no raft quorum for it: sealed segments
// never change, and READ routes on the node's applied metadata. (The
// active segment is not checked this way: only its leader serves it, and
// step 3 read it.)
func TestWipedNodeReReplicates(t *testing.T) {
	o := failoverOpts()
	o.http = true
	const segSize = 100
	o.env = map[string]string{"WALRUS_MAX_SEGMENT_ENTRIES": strconv.Itoa(segSize), "WALRUS_MONITOR_CHECK_MS": "100"}
	c := startCluster(t, 3, o)
	const topic = "wipe"
	c.dial(1).mustDo("REGISTER "+topic, "OK")
	h := &history{}
	start := time.Now()
	ps := startProducers(c, h, topic, "a", 1, 2, 3, 1)
	ps.waitAcks(50, start, failoverWait)
	ps.stop()

	_, w := c.openLeader(topic, 1)
	for round, restartAtOnce := range []bool{true, false} {
		if round > 0 {
			w = w%3 + 1 // another node each round
		}
		rest := c.others(w)
		start = time.Now()
		ps = startProducers(c, h, topic, fmt.Sprintf("r%d", round+1), rest[0], rest[1], rest[0], rest[1])
		ps.waitAcks(10, start, failoverWait)
		var seg int64
		c.waitFor(fmt.Sprintf("node %d to lead the active segment of %s, with room for more", w, topic), failoverWait, func() error {
			m, err := c.rawJSON(rest[0], "STATE "+topic)
			if err != nil {
				return err
			}
			s, err := c.topicState(rest[0], topic)
			if err != nil {
				return err
			}
			hwm, _ := asInt(m.get("high_water_mark"))
			if n := hwm - s.lastSealedOff; s.leader != w || s.segmentState != "open" || n < 10 || n > segSize/2 {
				return fmt.Errorf("segment %d: leader %d, %s, %d entries", s.current, s.leader, s.segmentState, hwm-s.lastSealedOff)
			}
			seg = s.current
			return nil
		})
		wipedAt := time.Now()
		c.wipe(w, rest[0])
		if !restartAtOnce {
			ps.waitAcks(20, wipedAt, failoverWait)
		}
		c.start(w)
		rejoinAt := time.Now()
		c.waitReady()
		ps.waitAcks(40, rejoinAt, failoverWait)
		ps.stop()
		sealedAt, _ := c.waitSealed(topic, seg, rest[0], failoverWait)
		t.Logf("round %d: node %d (leading segment %d) killed and wiped; restarted empty %v later; segment %d sealed at %d entries",
			round+1, w, seg, rejoinAt.Sub(wipedAt).Round(time.Millisecond), seg, sealedAt)

		log := c.waitReadAll(rest[0], topic)
		checkLog(t, h, log)
		c.sameLog(topic, log, c.ids()...)
		if t.Failed() {
			return
		}
		aloneServesSealed(t, c, topic, w, log)
		if t.Failed() {
			return
		}
	}
}

// aloneServesSealed is steps 4 and 5 of TestWipedNodeReReplicates.
func aloneServesSealed(t *testing.T, c *cluster, topic string, w int, log []string) {
	t.Helper()
	rest := c.others(w)
	var st topicState
	c.waitFor(fmt.Sprintf("every sealed segment of %s to name node %d as a replica again, and node %d to hold them all sealed", topic, w, w),
		failoverWait, func() error {
			var err error
			if st, err = c.topicState(rest[0], topic); err != nil {
				return err
			}
			var missing []string
			for seg := range st.sealed {
				if reps := st.replicas[seg]; len(reps) != 3 || !slices.Contains(reps, int64(w)) {
					missing = append(missing, fmt.Sprintf("%s:%v", seg, reps))
				}
			}
			if len(missing) > 0 {
				slices.Sort(missing)
				return fmt.Errorf("segments not yet replicated to all three (segment:replicas): %v", missing)
			}
			held, err := c.promGauge(w, `walrus_segments{state="sealed"}`)
			if err != nil {
				return err
			}
			if int(held) != len(st.sealed) {
				return fmt.Errorf("node %d holds %v sealed segment files, STATE has %d sealed segments", w, held, len(st.sealed))
			}
			return nil
		})

	for _, id := range rest {
		c.stop(id)
	}
	r := c.dial(w)
	first := 0
	for seg := int64(1); seg < st.current; seg++ {
		n, ok := st.sealed[strconv.FormatInt(seg, 10)]
		if !ok {
			t.Fatalf("segment %d is not sealed: %s", seg, st)
		}
		if first+int(n) > len(log) {
			t.Fatalf("segment %d (%d entries from offset %d) lies beyond the %d entries read", seg, n, first, len(log))
		}
		got := r.readRange(topic, first, int(n))
		if want := log[first : first+int(n)]; !slices.Equal(got, want) {
			t.Errorf("node %d alone, READ of segment %d (offsets %d..%d):\n%s", w, seg, first, first+int(n)-1, diffLogs(want, got))
		}
		first += int(n)
	}
	t.Logf("node %d alone served all %d sealed segments (%d entries) from its own disk", w, len(st.sealed), first)
	r.Close()
	c.startAll()
	c.waitReady()
	c.waitAllLive(w)
}

// readRange reads n entries from offset first with READ, in as many
// requests as it takes (a reply may stop at a segment boundary).
func (cn *conn) readRange(topic string, first, n int) []string {
	cn.t.Helper()
	var out []string
	for len(out) < n {
		_, es := cn.read(topic, first+len(out), n-len(out))
		if len(es) == 0 {
			cn.t.Fatalf("node %d: READ %s %d %d: EMPTY after %d of %d entries", cn.id, topic, first+len(out), n-len(out), len(out), n)
		}
		for _, e := range es {
			out = append(out, string(e))
		}
	}
	return out[:n]
}

// promGauge reads one sample (name with labels, exactly as exposed) from
// node id's /metrics; the cluster needs clusterOpts.http.
func (c *cluster) promGauge(id int, sample string) (float64, error) {
	nd := c.node(id)
	if nd.httpPort == 0 {
		return 0, fmt.Errorf("node %d has no HTTP port (clusterOpts.http)", id)
	}
	cl := http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get("http://" + nd.httpAddr() + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(&body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("node %d: no %s in /metrics", id, sample)
}
