#!/usr/bin/env bash
# Node and cluster throughput and latency (issues 4 and 7), from the
# repository root:
#
#   bench/node.sh            (or: just bench-node)
#
# Builds the node and walrus-bench, starts a local 3-node cluster the way
# `walrus dev` does (node 1 bootstraps, 2 and 3 join; fresh data dir under
# $WORK, loopback ports 19091-19093; --fsync always), and runs, with 128 B
# messages on one topic registered with rf=3:
#
#   1. 16 producers, PUT, one request in flight each
#   2. 16 producers, MPUT batches of 100, one request in flight each
#   3. read everything 1 and 2 wrote with READ batches of 1000: 1 reader,
#      then 16 readers splitting the offsets
#   4. 16 GET consumers draining run 1's topic through the shared cursor
#   5. runs 1 and 2 again in open loop at half the throughput measured
#      (latency from the scheduled send time)
#   6. 16 MPUT producers with 4 READ consumers tailing at the same time
#
# The disk's fdatasync rate is measured before and after, in $WORK, so
# the figures read as ratios. Knobs: DURATION (10s), PRODUCERS (16), WORK.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/walrus-node.XXXXXX)}
DURATION=${DURATION:-10s}
PRODUCERS=${PRODUCERS:-16}
mkdir -p "$WORK/logs"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap finish EXIT
trap 'exit 130' INT TERM

bench() { walrus_bench "$@"; } # lib.sh: report shown, JSON kept in $WORK/logs
rate() { json_field "$WORK/logs/$1.json" msgs_per_s; }

build_walrus
echo "walrus node bench: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ { print $2 }') GiB RAM, $(uname -sr), $(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }'), $(go version | cut -d' ' -f3)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other engineers share these 2 cores)"
log "disk baseline"
fsync_baseline 3s
log "3-node cluster, --fsync always"
walrus_start always
echo "nodes: $(walrus_addrs)"

log "1. PUT, one in flight"
bench put --register --rf 3 --topic node-put --producers "$PRODUCERS" --size 128 --batch 1 --inflight 1 --duration "$DURATION"
log "2. MPUT batches of 100, one in flight"
bench mput --register --rf 3 --topic node-mput --producers "$PRODUCERS" --size 128 --batch 100 --inflight 1 --duration "$DURATION"
log "3. READ batches of 1000, everything runs 1 and 2 wrote"
for t in node-put node-mput; do
	bench "read1-$t" --topic "$t" --producers 0 --consumers 1 --consume read --read-max 1000 --from start --duration 120s
	bench "read16-$t" --topic "$t" --producers 0 --consumers 16 --consume read --read-max 1000 --from start --duration 120s
done
log "4. GET (shared cursor), everything run 1 wrote"
bench get --topic node-put --producers 0 --consumers 16 --consume get --duration 120s
log "5. open loop at half the measured maximum"
half_put=$(awk -v m="$(rate put)" 'BEGIN { printf "%d", m / 2 }')
half_mput=$(awk -v m="$(rate mput)" 'BEGIN { printf "%d", m / 2 }')
bench half-put --register --rf 3 --topic node-half --producers "$PRODUCERS" --size 128 --batch 1 --inflight 1 \
	--rate "$half_put" --duration "$DURATION"
bench half-mput --topic node-half --producers "$PRODUCERS" --size 128 --batch 100 --inflight 1 \
	--rate "$half_mput" --duration "$DURATION"
log "6. MPUT producers with READ consumers tailing"
bench tail --register --rf 3 --topic node-tail --producers "$PRODUCERS" --size 128 --batch 100 --inflight 1 \
	--consumers 4 --consume read --read-max 1000 --duration "$DURATION"
stop_all
log "disk baseline again"
fsync_baseline 3s
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw outputs: $WORK/logs"
