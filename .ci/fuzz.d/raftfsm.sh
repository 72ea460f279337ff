#!/usr/bin/env bash
# Short fuzz pass over raftfsm.Apply: arbitrary raft log entries must never
# panic (except the documented unknown-command panic), nor break invariants.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -fuzz '^FuzzApply$' -fuzztime 15s ./raftfsm
