#!/usr/bin/env bash
# Writes through any node vs. to the segment leader (walrus-bench --route),
# alternated on one cluster so that the machine's noise hits both alike.
# From the repository root:
#
#   bench/route.sh
#
# ROUNDS times (default 2): a fresh 3-node cluster (--fsync always, rf=3),
# 16 producers of 128 B; PUT closed loop (one in flight) for DURATION
# (6s) with --route any, leader, any, leader; then MPUT x100 in open loop
# at half of that cluster's closed-loop MPUT maximum, the same four ways.
# One line per run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/walrus-route.XXXXXX)}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-6s}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap finish EXIT
trap 'exit 130' INT TERM
build_walrus
B=$WORK/bin/walrus-bench

echo "route: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
	walrus_start always >/dev/null
	"$B" --addr "$(walrus_addrs)" --register --topic r --producers 16 --duration 2s --quiet >/dev/null || true
	for route in any leader any leader; do
		"$B" --addr "$(walrus_addrs)" --route "$route" --topic r --producers 16 --duration "$DURATION" --quiet \
			--json-file "$WORK/p.json" >/dev/null || true
		printf 'round %d PUT  route %-6s %10.0f msgs/s  p50 %s p99 %s ms\n' "$round" "$route" \
			"$(json_field "$WORK/p.json" msgs_per_s)" "$(json_field "$WORK/p.json" p50)" "$(json_field "$WORK/p.json" p99)"
	done
	"$B" --addr "$(walrus_addrs)" --topic r --producers 16 --batch 100 --duration "$DURATION" --quiet \
		--json-file "$WORK/max.json" >/dev/null || true
	half=$(awk -v m="$(json_field "$WORK/max.json" msgs_per_s)" 'BEGIN { printf "%d", m / 2 }')
	for route in any leader any leader; do
		"$B" --addr "$(walrus_addrs)" --route "$route" --topic r --producers 16 --batch 100 --rate "$half" \
			--duration "$DURATION" --quiet --json-file "$WORK/p.json" >/dev/null || true
		printf 'round %d MPUT route %-6s %10.0f msgs/s  p50 %s p99 %s p99.9 %s ms (open loop)\n' "$round" "$route" \
			"$(json_field "$WORK/p.json" msgs_per_s)" "$(json_field "$WORK/p.json" p50)" "$(json_field "$WORK/p.json" p99)" \
			"$(json_field "$WORK/p.json" p99.9)"
	done
	stop_all
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
