#!/usr/bin/env bash
# Short fuzz pass over the inter-node message decoders: any body a peer
# sends never makes a hand-written decoder panic, and what one accepts the
# reflection decoder reads the same. Budget in executions (see raftfsm.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -fuzz '^FuzzFastDecode$' -fuzztime 300000x ./messages
