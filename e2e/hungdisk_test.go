package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Freeze the active segment's leader's disk (fsfreeze: every write and
// sync on its file system blocks until thawed, as on a disk that hangs)
// until its segment is sealed and writes flow through the others, then
// thaw it. Its sync never returning stops the node (with the stall
// watchdog off, so that this is all there is): the next garbage
// collection waits for the raw system call in it (docs/operations.md, "A
// disk that hangs"), the node stops answering, the cluster fails it over
// and goes on; thawed, it rejoins, and acknowledged nothing after the
// seal that is not in the log (sealOutLeader's checks).
func TestFailoverHungDisk(t *testing.T) {
	// the watchdog off: the garbage collector alone must stop the node
	c, disks := frozenDiskCluster(t, "--disk-stall-exit", "0")
	for round := 1; round <= failoverRounds(t); round++ {
		sealOutLeader(t, c, fmt.Sprintf("hung%d", round), "disk frozen", disks.freeze, disks.thaw)
		if t.Failed() {
			return
		}
	}
}

// The same with --plain-syscalls, where a sync that never returns stops
// only the WAL: the node would go on answering its peers, so nothing would
// fail over (without the watchdog this test times out), until
// --disk-stall-exit (2 s here) ends the process with status 3. Thawed, it
// is started again.
func TestFailoverHungDiskPlainSyscalls(t *testing.T) {
	c, disks := frozenDiskCluster(t, "--plain-syscalls", "--disk-stall-exit", "2s")
	restore := func(id int) {
		disks.thaw(id)
		c.waitExited(id, 3)
		c.start(id)
	}
	for round := 1; round <= failoverRounds(t); round++ {
		sealOutLeader(t, c, fmt.Sprintf("stall%d", round), "disk frozen", disks.freeze, restore)
		if t.Failed() {
			return
		}
	}
}

// frozenDiskCluster starts a 3-node cluster with the failover tests'
// timings and args, each node's data on a freezable disk of its own.
func frozenDiskCluster(t *testing.T, args ...string) (*cluster, *freezableDisks) {
	t.Helper()
	disks := newFreezableDisks(t, 3) // before the cluster: unmounted after its nodes die
	opts := failoverOpts()
	opts.dataDir = disks.dir
	opts.args = append(opts.args, args...)
	c := startCluster(t, 3, opts)
	t.Cleanup(disks.thawAll) // runs before the cluster's cleanup: a node blocked on a frozen disk cannot die
	return c, disks
}

// freezableDisks gives each node its own small ext4 file system on a loop
// device, which the test can freeze and thaw.
type freezableDisks struct {
	t      *testing.T
	mounts map[int]string
	mu     sync.Mutex
	frozen map[int]bool
}

// newFreezableDisks makes and mounts disks for nodes 1..n, or skips the
// test. A watchdog process thaws them all after watchdogSeconds even if
// the test binary dies with one frozen (its nodes would block forever).
func newFreezableDisks(t *testing.T, n int) *freezableDisks {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount loop devices and freeze file systems")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount", "fsfreeze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	d := &freezableDisks{t: t, mounts: map[int]string{}, frozen: map[int]bool{}}
	base := t.TempDir()
	for id := 1; id <= n; id++ {
		img := filepath.Join(base, fmt.Sprintf("disk%d.img", id))
		mnt := filepath.Join(base, fmt.Sprintf("mnt%d", id))
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 256<<20); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4 %s: %v: %s", img, err, out)
		}
		if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a loop device: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", mnt, err, out)
			}
		})
		d.mounts[id] = mnt
	}
	var thaw []string
	for _, mnt := range d.mounts {
		thaw = append(thaw, "fsfreeze -u "+mnt+" 2>/dev/null")
	}
	watchdog := exec.Command("sh", "-c", fmt.Sprintf("sleep %d; %s", watchdogSeconds, strings.Join(thaw, "; ")))
	watchdog.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the test binary
	if err := watchdog.Start(); err != nil {
		t.Fatalf("start the thaw watchdog: %v", err)
	}
	t.Cleanup(func() { _ = watchdog.Process.Kill(); _ = watchdog.Wait() })
	return d
}

// watchdogSeconds: how long after the disks are made the watchdog thaws
// them, whatever the test did; longer than the test takes.
const watchdogSeconds = 600

// dir is node id's --data-dir.
func (d *freezableDisks) dir(id int) string { return d.mounts[id] }

func (d *freezableDisks) freeze(id int) {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if out, err := exec.Command("fsfreeze", "-f", d.mounts[id]).CombinedOutput(); err != nil {
		d.t.Fatalf("fsfreeze -f %s: %v: %s", d.mounts[id], err, out)
	}
	d.frozen[id] = true
}

func (d *freezableDisks) thaw(id int) {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.frozen[id] {
		return
	}
	if out, err := exec.Command("fsfreeze", "-u", d.mounts[id]).CombinedOutput(); err != nil {
		d.t.Errorf("fsfreeze -u %s: %v: %s", d.mounts[id], err, out)
		return
	}
	delete(d.frozen, id)
}

func (d *freezableDisks) thawAll() {
	for id := range d.mounts {
		d.thaw(id)
	}
}

// A node that writes nothing has no disk call to get stuck: its watchdog
// probes the disk (a small write and sync when no call has finished for
// half the --disk-stall-exit), so a frozen disk ends it all the same. The
// node logs why before it exits; the exit completes once the stuck probe
// returns, after the thaw.
func TestHungDiskIdleNodeExits(t *testing.T) {
	c, disks := frozenDiskCluster(t, "--plain-syscalls", "--disk-stall-exit", "2s")
	frozenAt := time.Now()
	disks.freeze(2)
	c.waitFor("idle node 2 to log that its disk stalled", failoverWait, func() error {
		b, err := os.ReadFile(c.node(2).logPath)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "disk stalled") {
			return fmt.Errorf("not in its log yet")
		}
		return nil
	})
	t.Logf("idle node 2 gave up on its disk %v after the freeze", time.Since(frozenAt).Round(time.Millisecond))
	disks.thaw(2)
	c.waitExited(2, 3)
	c.start(2)
	c.waitReady()
	c.dial(2).mustDo("REGISTER after", "OK")
	c.dial(2).mustDo("PUT after x", "OK")
	c.dial(1).mustDo("GET after", "OK x")
}

// A node started again onto a disk that still hangs gives up on it too:
// the stall watchdog runs from before the WAL and raft's log open, so the
// node logs that its disk stalled instead of waiting for it unnoticed,
// and exits (status 3) once the disk answers; started again on the
// thawed disk, it serves what it held.
func TestNodeStartedOnHungDiskExits(t *testing.T) {
	c, disks := frozenDiskCluster(t, "--plain-syscalls", "--disk-stall-exit", "2s")
	c.dial(1).mustDo("REGISTER keep", "OK")
	c.dial(1).mustDo("PUT keep x", "OK")
	c.stop(2)
	disks.freeze(2)
	nd := c.node(2)
	c.spawn(nd)
	marker := []byte(fmt.Sprintf("=== e2e: launch %d of node %d:", nd.launches, nd.id))
	spawnedAt := time.Now()
	var started bool
	c.waitFor("node 2, started on a frozen disk, to log that its disk stalled", failoverWait, func() error {
		b, err := os.ReadFile(nd.logPath)
		if err != nil {
			return err
		}
		_, launch, _ := bytes.Cut(b, marker)
		stalled := bytes.Index(launch, []byte("disk stalled"))
		if stalled < 0 {
			return fmt.Errorf("not in its log yet")
		}
		started = bytes.Contains(launch[:stalled], []byte(`msg="node started"`))
		return nil
	})
	t.Logf("node 2 gave up on its disk %v after it was launched (it had logged its start first: %v)",
		time.Since(spawnedAt).Round(time.Millisecond), started)
	disks.thaw(2)
	c.waitExited(2, 3)
	c.start(2)
	c.waitReady()
	c.dial(2).mustDo("GET keep", "OK x")
}
