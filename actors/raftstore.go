package actors

import (
	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/wal"
)

// watchedRaftStore counts the raft log's writes (each a bolt transaction
// synced to disk) in the node's disk watch, beside the WAL's calls, so
// that --disk-stall-exit also notices a disk that hangs under raft's
// store: a node whose raft log cannot be written stops answering
// elections and metadata, but its lease pings go on. Reads (served from
// bolt's memory map) are not counted, as the WAL's are not.
type watchedRaftStore struct {
	log    raft.LogStore
	stable raft.StableStore
	w      *wal.IOWatch
}

func (s watchedRaftStore) FirstIndex() (uint64, error) { return s.log.FirstIndex() }
func (s watchedRaftStore) LastIndex() (uint64, error)  { return s.log.LastIndex() }
func (s watchedRaftStore) GetLog(index uint64, l *raft.Log) error {
	return s.log.GetLog(index, l)
}

func (s watchedRaftStore) StoreLog(l *raft.Log) error {
	return s.w.Track(func() error { return s.log.StoreLog(l) })
}

func (s watchedRaftStore) StoreLogs(logs []*raft.Log) error {
	return s.w.Track(func() error { return s.log.StoreLogs(logs) })
}

func (s watchedRaftStore) DeleteRange(min, max uint64) error {
	return s.w.Track(func() error { return s.log.DeleteRange(min, max) })
}

func (s watchedRaftStore) Set(key, val []byte) error {
	return s.w.Track(func() error { return s.stable.Set(key, val) })
}

func (s watchedRaftStore) Get(key []byte) ([]byte, error) { return s.stable.Get(key) }

func (s watchedRaftStore) SetUint64(key []byte, val uint64) error {
	return s.w.Track(func() error { return s.stable.SetUint64(key, val) })
}

func (s watchedRaftStore) GetUint64(key []byte) (uint64, error) { return s.stable.GetUint64(key) }
