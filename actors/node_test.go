package actors

import (
	"testing"
	"time"

	"github.com/walrus-go/walrus/wal"
)

// TestFsyncFlag: the start line names the sync mode as --fsync spells it,
// so an operator (and the e2e tests) can grep for the flag they passed.
func TestFsyncFlag(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Sync: wal.SyncEveryBatch}, "always"},
		{Config{Sync: wal.SyncInterval, SyncInterval: 20 * time.Millisecond}, "interval:20ms"},
		{Config{Sync: wal.SyncInterval}, "interval:" + wal.DefaultSyncInterval.String()},
		{Config{Sync: wal.SyncNever}, "never"},
	} {
		if got := fsyncFlag(c.cfg); got != c.want {
			t.Errorf("fsyncFlag(%v) = %q, want %q", c.cfg.Sync, got, c.want)
		}
	}
}
