#!/usr/bin/env bash
# Does the MPUT tail at half rate come from rollovers? From the repository
# root:
#
#   bench/halfrate-tail.sh
#
# For each value of SEGMENTS (default "1000000 100000000 1000000
# 100000000": the default segment size, where a rollover comes every
# 2-3 s at these rates, alternated with one no run reaches), start a fresh
# 3-node cluster (--fsync always, rf=3) with WALRUS_MAX_SEGMENT_ENTRIES set
# to it, run 16 MPUT x100 producers (128 B) closed loop for 6 s, then in
# open loop at half of that on the same (warm) topic for DURATION (8s), and
# print one line per cluster: the maximum, the half rate achieved and its
# latency percentiles (ms, from the scheduled send). FRACTION (0.5) sets
# the open-loop rate as a fraction of the maximum (0.25: a quarter).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/walrus-halfrate.XXXXXX)}
SEGMENTS=${SEGMENTS:-1000000 100000000 1000000 100000000}
DURATION=${DURATION:-8s}
FRACTION=${FRACTION:-0.5}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap finish EXIT
trap 'exit 130' INT TERM
build_walrus
B=$WORK/bin/walrus-bench

echo "halfrate-tail: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD), open loop at $FRACTION of the maximum, load $(cut -d' ' -f1-3 /proc/loadavg)"
for segs in $SEGMENTS; do
	export WALRUS_MAX_SEGMENT_ENTRIES=$segs
	walrus_start always >/dev/null
	"$B" --addr "$(walrus_addrs)" --register --topic h --producers 16 --batch 100 --duration 6s --quiet \
		--json-file "$WORK/max.json" >/dev/null || true
	max=$(json_field "$WORK/max.json" msgs_per_s)
	half=$(awk -v m="$max" -v f="$FRACTION" 'BEGIN { printf "%d", m * f }')
	"$B" --addr "$(walrus_addrs)" --topic h --producers 16 --batch 100 --rate "$half" --duration "$DURATION" --quiet \
		--json-file "$WORK/half.json" >/dev/null || true
	printf 'segment entries %-10s closed loop %8.0f msgs/s; open loop at %8.0f msgs/s: p50 %s p99 %s p99.9 %s max %s ms\n' \
		"$segs" "$max" "$(json_field "$WORK/half.json" msgs_per_s)" "$(json_field "$WORK/half.json" p50)" \
		"$(json_field "$WORK/half.json" p99)" "$(json_field "$WORK/half.json" p99.9)" "$(json_field "$WORK/half.json" max)"
	stop_all
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
