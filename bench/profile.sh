#!/usr/bin/env bash
# CPU profile of the node under the batched workload, from the repository
# root:
#
#   bench/profile.sh            (or: just bench-profile)
#
# The node has no pprof endpoint, so this runs BenchmarkClusterMPut
# (cmd/walrus-bench/profile_test.go): an in-process 3-node cluster (RF 3,
# fsync always, loopback TCP, WAL under a temp dir) driven by walrus-bench's
# engine, 16 producers with MPUT batches of 100 x 128 B, MESSAGES messages
# in all, under `go test -cpuprofile`. The three nodes and the client share
# the process; `-ignore 'cmd/walrus-bench\.'` drops the client's samples (in
# a test binary package main is named by its import path; every client
# goroutine runs under such a frame, no node goroutine does), so the tables
# below are the three nodes' costs added together.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/walrus-profile.XXXXXX)}
MESSAGES=${MESSAGES:-2000000}
BENCH=${BENCH:-ClusterMPut}
mkdir -p "$WORK"
cd "$ROOT"
run() {
	printf '$ %s\n' "$*"
	"$@"
}
run go test -run '^$' -bench "^Benchmark$BENCH\$" -benchtime "${MESSAGES}x" -cpuprofile "$WORK/cpu.prof" \
	-o "$WORK/walrus-bench.test" ./cmd/walrus-bench
P="go tool pprof"
share() { # REGEXP [IGNORE]: seconds of samples with a frame matching REGEXP on the stack
	$P -top -nodecount 100000 -focus "$1" ${2:+-ignore "$2"} "$WORK/walrus-bench.test" "$WORK/cpu.prof" 2>/dev/null |
		sed -n 's/^Showing nodes accounting for \([0-9.]*m\?s\),.*/\1/p'
}
total=$($P -top -nodecount 1 "$WORK/walrus-bench.test" "$WORK/cpu.prof" 2>/dev/null | sed -n 's/.*Total samples = \([0-9.]*m\?s\).*/\1/p')
echo
echo "## where the CPU went: samples with a frame matching each pattern on the stack (overlapping)"
echo "total samples: $total; client (a cmd/walrus-bench frame on the stack): $(share 'cmd/walrus-bench\.'); nodes: $(share . 'cmd/walrus-bench\.')"
echo "nodes only (client samples ignored):"
printf '  %-68s %s\n' "pattern" "samples"
for re in 'github.com/walrus-go/walrus/wal\.' 'syscall.Fdatasync' \
	'github.com/walrus-go/walrus/transport\.' 'vmihailenco/msgpack' \
	'actors\.\(\*connActor\)|actors\.\(\*Node\)\.acceptClients' 'actors\.\(\*segmentActor\)' \
	'asynkron/protoactor-go' 'hashicorp/raft' \
	'^syscall\.write$|internal/poll\.\(\*FD\)\.Write' '^syscall\.read$|internal/poll\.\(\*FD\)\.Read' \
	'runtime\.gcBgMarkWorker|runtime\.gcAssistAlloc' 'runtime\.mallocgc' 'runtime\.schedule|runtime\.findRunnable'; do
	printf '  %-68s %s\n' "$re" "$(share "$re" 'cmd/walrus-bench\.')"
done
echo
echo "## nodes only, flat (self time)"
run $P -top -nodecount 30 -ignore 'cmd/walrus-bench\.' "$WORK/walrus-bench.test" "$WORK/cpu.prof" 2>/dev/null
echo
echo "## nodes only, cumulative"
run $P -top -cum -nodecount 45 -ignore 'cmd/walrus-bench\.' "$WORK/walrus-bench.test" "$WORK/cpu.prof" 2>/dev/null
echo "profile: $WORK/cpu.prof (go tool pprof -http : $WORK/walrus-bench.test $WORK/cpu.prof)"
