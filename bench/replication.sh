#!/usr/bin/env bash
# Replication and failover (issue 5), from the repository root:
#
#   bench/replication.sh
#
# 1. The cost of replication: one local 3-node cluster (as bench/node.sh
#    starts it: node 1 bootstraps, 2 and 3 join; --fsync always; loopback
#    ports 19091-19093), two topics registered with rf=1 and rf=3, and in
#    the same run, alternating between them (rf=1, rf=3, rf=3, rf=1, so
#    a drift in the machine's load affects both alike), 16 producers of 128 B with
#    one request in flight each: PUT, then MPUT batches of 100.
#    Producers are spread over the three nodes in both cases (two thirds
#    of the requests are forwarded to the segment's leader).
# 2. Failover as a writer sees it: BenchmarkLeaderKillToFirstWrite
#    (e2e/failover_bench_test.go), SIGKILL of the active segment's leader to
#    the first OK of a write sent after it through another node, 5 kills
#    (plus the one the testing package runs first) for each of: default
#    timings and --lease 500ms --failure-timeout 1s, victim also the raft
#    leader or not.
#
# The disk's fdatasync rate is measured before and after, in $WORK.
# Knobs: DURATION (10s per run), PRODUCERS (16), KILLS (5), WORK.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/walrus-repl.XXXXXX)}
DURATION=${DURATION:-10s}
PRODUCERS=${PRODUCERS:-16}
KILLS=${KILLS:-5}
mkdir -p "$WORK/logs"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap finish EXIT
trap 'exit 130' INT TERM

bench() { walrus_bench "$@"; } # lib.sh: report shown, JSON kept in $WORK/logs

build_walrus
echo "walrus replication bench: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ { print $2 }') GiB RAM, $(uname -sr), $(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }'), $(go version | cut -d' ' -f3)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other engineers share these 2 cores)"
log "disk baseline"
fsync_baseline 3s
log "3-node cluster, --fsync always"
walrus_start always
echo "nodes: $(walrus_addrs)"

n=0
log "1. PUT, one in flight: rf=1, rf=3, rf=3, rf=1"
for rf in 1 3 3 1; do
	n=$((n + 1))
	bench "put-rf$rf-$n" --register --rf "$rf" --topic "repl-rf$rf" --producers "$PRODUCERS" --size 128 --batch 1 --inflight 1 --duration "$DURATION"
done
log "1. MPUT batches of 100, one in flight: rf=1, rf=3, rf=3, rf=1"
for rf in 1 3 3 1; do
	n=$((n + 1))
	bench "mput-rf$rf-$n" --register --rf "$rf" --topic "repl-rf$rf" --producers "$PRODUCERS" --size 128 --batch 100 --inflight 1 --duration "$DURATION"
done
stop_all

log "2. leader kill to first write"
(cd "$ROOT" && run go test -run '^$' -bench LeaderKillToFirstWrite -benchtime "${KILLS}x" -timeout 20m ./e2e/) 2>&1 |
	tee "$WORK/logs/kill.txt"

log "disk baseline again"
fsync_baseline 3s
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw outputs: $WORK/logs"
