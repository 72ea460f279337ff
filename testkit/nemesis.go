package testkit

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Nemesis applies a fault plan to a cluster. One goroutine runs it: a fault
// and the action that ends it (restart, resume, heal) are steps of one
// timeline, so cluster changes never race each other.
type Nemesis struct {
	// corrupted: nodes whose disk the nemesis damaged on purpose
	corrupted map[uint64]bool
	// Refusals lists nodes that refused their own disk after every fault
	// had ended, although the nemesis never damaged it (a durability
	// failure)
	Refusals []string
	healing  bool
	c        *Cluster
	h        *History
	start    time.Time
	pending  []endAction
	sched    *Schedule
}

type endAction struct {
	at   time.Duration
	seq  int
	name string
	do   func()
}

// NewNemesis returns a nemesis for c that records into h; times count from
// start.
func NewNemesis(c *Cluster, h *History, s *Schedule, start time.Time) *Nemesis {
	return &Nemesis{c: c, h: h, start: start, sched: s}
}

func (nm *Nemesis) sleepUntil(at time.Duration) {
	for {
		now := time.Since(nm.start)
		next := at
		if len(nm.pending) > 0 && nm.pending[0].at < next {
			next = nm.pending[0].at
		}
		if next > now {
			time.Sleep(next - now)
		}
		if len(nm.pending) > 0 && nm.pending[0].at <= time.Since(nm.start) {
			a := nm.pending[0]
			nm.pending = nm.pending[1:]
			a.do()
			continue
		}
		if time.Since(nm.start) >= at {
			return
		}
	}
}

func (nm *Nemesis) later(d time.Duration, name string, do func()) {
	a := endAction{at: time.Since(nm.start) + d, seq: len(nm.pending), name: name, do: do}
	nm.pending = append(nm.pending, a)
	sort.SliceStable(nm.pending, func(i, j int) bool { return nm.pending[i].at < nm.pending[j].at })
}

// Run applies faults in order, then, at end, ends every fault still on and
// brings every node back.
func (nm *Nemesis) Run(faults []FaultPlan, end time.Duration) {
	for _, f := range faults {
		if f.At >= end {
			break
		}
		nm.sleepUntil(f.At)
		nm.Apply(f)
	}
	nm.sleepUntil(end)
	nm.HealAll()
}

// HealAll ends every pending fault now and restarts every node that is down.
func (nm *Nemesis) HealAll() {
	// first end every fault on every disk and link, then run what the
	// faults left pending (restarts), then restart whatever is still down:
	// from here on, a disk the nemesis never damaged must open
	for _, id := range nm.c.IDs() {
		nd := nm.c.Nodes[id]
		nd.FS.Unstall()
		nd.FS.ReleaseSyncs()
		nd.FS.SetQuota(0)
		nd.FS.FailSyncs(false)
		nm.c.Net.Resume(nd.Host)
		for _, o := range nm.c.IDs() {
			nm.c.Net.SetSlow(nd.Host, NodeHost(o), 0)
		}
	}
	nm.c.Net.SetFrameFaults(0, 0, 0)
	nm.c.Net.Heal()
	nm.healing = true
	defer func() { nm.healing = false }()
	for len(nm.pending) > 0 {
		a := nm.pending[0]
		nm.pending = nm.pending[1:]
		a.do()
	}
	for _, id := range nm.c.IDs() {
		nd := nm.c.Nodes[id]
		if nm.c.Proc(id) == nil && !nd.Removed {
			nm.restart(id)
			if nd.Refused != nil && !errors.Is(nd.Refused, ErrHung) {
				nm.replace(id)
			}
		}
	}
	nm.h.Eventf("nemesis", "healed everything")
}

// resolve picks the node a fault targets now.
func (nm *Nemesis) resolve(f FaultPlan) uint64 {
	switch f.Role {
	case RoleRaftLeader:
		if l := nm.c.Leader(); l != 0 {
			return l
		}
	case RoleSegmentLeader:
		for _, id := range nm.c.Up() {
			n := nm.c.Proc(id)
			if n == nil {
				continue
			}
			if t := n.State().Topics[f.Topic]; t != nil {
				if a := t.Active(); a != nil && a.Leader != 0 {
					return uint64(a.Leader)
				}
			}
		}
	}
	return f.Target
}

// restart starts a node; a node whose disk it refuses (corruption) gets a
// new disk and joins again.
func (nm *Nemesis) restart(id uint64) {
	err := nm.c.Start(id)
	if err == nil {
		nm.h.Eventf("nemesis", "restarted n%d", id)
		return
	}
	if errors.Is(err, ErrHung) {
		nm.h.Eventf("nemesis", "n%d cannot restart: %v", id, err)
		return
	}
	nm.h.Eventf("nemesis", "n%d refused to start: %s", id, shortErr(err))
	// while a disk fault is on, a refusal may be the fault's doing; once
	// every fault has ended (HealAll), an undamaged disk must open
	if nm.healing && !nm.corrupted[id] && !errors.Is(err, ErrHung) {
		nm.Refusals = append(nm.Refusals, fmt.Sprintf("n%d: %s", id, shortErr(err)))
	}
}

var dataDirRE = regexp.MustCompile(`/\S*/(node_\d+/)`)

// shortErr is an error's text with the run's data directory (a temp path)
// written as <data>.
func shortErr(err error) string {
	return dataDirRE.ReplaceAllString(err.Error(), "<data>/$1")
}

// replace decommissions a node whose disk is lost or refused (the
// operator's procedure: remove it, then add a fresh node with a new id).
func (nm *Nemesis) replace(id uint64) {
	var err error
	for try := 0; try < 20; try++ {
		if err = nm.c.Remove(id); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		nm.h.Eventf("nemesis", "remove n%d: %v", id, err)
		return
	}
	nm.h.Eventf("nemesis", "removed n%d from the cluster", id)
	nid := nm.c.AddNode()
	if err := nm.c.Start(nid); err != nil {
		nm.h.Eventf("nemesis", "new node n%d did not start: %s", nid, shortErr(err))
		return
	}
	nm.h.Eventf("nemesis", "added n%d (joins)", nid)
}

// Apply performs one fault and schedules its end.
func (nm *Nemesis) Apply(f FaultPlan) {
	c := nm.c
	id := nm.resolve(f)
	nd := c.Nodes[id]
	up := c.Proc(id) != nil
	desc := f.String()
	if f.Role != RoleNode {
		desc += fmt.Sprintf(" = n%d", id)
	}
	skip := func(why string) { nm.h.Eventf("nemesis", "skip %s: %s", desc, why) }
	switch f.Kind {
	case FaultCrash:
		if !up {
			skip("down")
			return
		}
		nm.h.Eventf("nemesis", "%s", desc)
		c.Crash(id, f.Torn)
		nm.later(f.Dur, "restart", func() { nm.restart(id) })
	case FaultStop:
		if !up {
			skip("down")
			return
		}
		nm.h.Eventf("nemesis", "%s", desc)
		c.Stop(id)
		nm.later(f.Dur, "restart", func() { nm.restart(id) })
	case FaultPause:
		if !up {
			skip("down")
			return
		}
		nm.h.Eventf("nemesis", "%s", desc)
		c.Net.Pause(nd.Host)
		nd.FS.Stall()
		nm.later(f.Dur, "resume", func() {
			nd.FS.Unstall()
			c.Net.Resume(nd.Host)
			nm.h.Eventf("nemesis", "resumed n%d", id)
		})
	case FaultPartition:
		nm.h.Eventf("nemesis", "%s", desc)
		c.Net.Partition([]string{nd.Host}, c.Hosts())
		nm.later(f.Dur, "heal", func() {
			c.Net.Heal()
			nm.h.Eventf("nemesis", "healed partition")
		})
	case FaultSplit:
		var side []string
		for _, s := range f.Side {
			side = append(side, NodeHost(s))
		}
		nm.h.Eventf("nemesis", "%s", desc)
		c.Net.Partition(side, c.Hosts())
		nm.later(f.Dur, "heal", func() {
			c.Net.Heal()
			nm.h.Eventf("nemesis", "healed partition")
		})
	case FaultResetLink:
		nm.h.Eventf("nemesis", "%s", desc)
		c.Net.ResetLink(nd.Host, NodeHost(f.Peer))
	case FaultSlowLink:
		extra := 50*time.Millisecond + f.Dur/10
		nm.h.Eventf("nemesis", "%s extra=%v", desc, extra)
		a, b := nd.Host, NodeHost(f.Peer)
		c.Net.SetSlow(a, b, extra)
		c.Net.SetSlow(b, a, extra)
		nm.later(f.Dur, "fast", func() {
			c.Net.SetSlow(a, b, 0)
			c.Net.SetSlow(b, a, 0)
			nm.h.Eventf("nemesis", "link n%d-n%d fast again", id, f.Peer)
		})
	case FaultCorrupt:
		if !up {
			skip("down")
			return
		}
		c.Crash(id, false)
		if !c.WaitTimeout(id, time.Minute) {
			nm.h.Eventf("nemesis", "%s: n%d did not finish stopping", desc, id)
			return
		}
		files := nd.FS.Files(filepath.Join(nd.Cfg.NodeDir(), "wal"))
		var cand []int
		for i, fi := range files {
			// a sealed file: any damaged byte is detected when the WAL
			// opens; the tail of an open file: looks like a torn write
			if fi.Size > 0 && (strings.HasSuffix(fi.Name, ".sealed") != f.Tail) {
				cand = append(cand, i)
			}
		}
		if len(cand) == 0 {
			nm.h.Eventf("nemesis", "%s: no file to corrupt (crashed only)", desc)
		} else {
			fi := files[cand[int(f.Pick*float64(len(cand)))]]
			off := int64(f.Pick * float64(fi.Size))
			if f.Tail {
				off = fi.Size - 1 - int64(f.Pick*float64(min(fi.Size, 24)))
			}
			nd.FS.Corrupt(fi.Name, off)
			if nm.corrupted == nil {
				nm.corrupted = map[uint64]bool{}
			}
			nm.corrupted[id] = true
			nm.h.Eventf("nemesis", "%s: flipped byte %d of %s (%d bytes)", desc, off, filepath.Base(fi.Name), fi.Size)
		}
		nm.later(f.Dur, "restart", func() { nm.restart(id) })
	case FaultDiskFull:
		if !up {
			skip("down")
			return
		}
		room := int64(f.Pick * 2048)
		nm.h.Eventf("nemesis", "%s room=%d", desc, room)
		nd.FS.SetQuota(nd.FS.Used() + room + 1)
		nm.later(f.Dur, "free", func() {
			nd.FS.SetQuota(0)
			nm.h.Eventf("nemesis", "disk of n%d has room again", id)
		})
	case FaultSyncFail:
		if !up {
			skip("down")
			return
		}
		nm.h.Eventf("nemesis", "%s", desc)
		nd.FS.FailSyncs(true)
		nm.later(f.Dur, "restart", func() {
			nd.FS.FailSyncs(false)
			if c.Proc(id) != nil {
				c.Crash(id, false)
				nm.h.Eventf("nemesis", "n%d crashed to clear its fenced WAL", id)
			}
			nm.restart(id)
		})
	case FaultMetaLag:
		n := c.Proc(id)
		if n == nil {
			skip("down")
			return
		}
		nm.h.Eventf("nemesis", "%s", desc)
		n.HoldMetadata(true)
		nm.later(f.Dur, "meta", func() {
			n.HoldMetadata(false) // the process it held (a restart starts a new one, not held)
			nm.h.Eventf("nemesis", "n%d metadata released", id)
		})
	case FaultSlowSync:
		nm.h.Eventf("nemesis", "%s", desc)
		nd.FS.HoldSyncs()
		// The disk ends the wait, not the nemesis's timeline: a restart of
		// this node (another fault's) waits for its recovery's fsyncs, and
		// would hold up the timeline, and with it a release queued there.
		time.AfterFunc(f.Dur, func() {
			nd.FS.ReleaseSyncs()
			nm.h.Eventf("nemesis", "fsyncs of n%d go on", id)
		})
	case FaultFrameChaos:
		s := nm.sched
		nm.h.Eventf("nemesis", "%s drop=%.3f dup=%.3f reorder=%.3f", desc, s.DropFrame, s.DupFrame, s.ReorderFrame)
		c.Net.SetFrameFaults(s.DropFrame, s.DupFrame, s.ReorderFrame)
		nm.later(f.Dur, "calm", func() {
			c.Net.SetFrameFaults(0, 0, 0)
			nm.h.Eventf("nemesis", "frame chaos over")
		})
	}
}
