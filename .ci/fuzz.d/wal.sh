#!/usr/bin/env bash
# Short fuzz passes for the storage engine (package wal): the record decoder,
# then recovery of arbitrary segment-file bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -fuzz '^FuzzDecodeRecord$' -fuzztime 20s ./wal
go test -run '^$' -fuzz '^FuzzRecover$' -fuzztime 10s ./wal
