// Package wal is the node's storage engine: one file per segment, group
// commit across all segments, CRC32C-checked records, recovery that cuts a
// torn tail, and reads by offset through a sparse index.
package wal
