#!/usr/bin/env bash
# A/B of the load generator itself: one 3-node cluster of the working
# tree's node, driven in turn by walrus-bench built from BASE_REF (A) and
# from the working tree (B), alternated (A,B then B,A) ROUNDS times. A
# change to walrus-bench changes the CPU the nodes get on a shared machine,
# so what it does to the figures is measured here, apart from the node's
# own changes (bench/ab.sh). From the repository root:
#
#   bench/ab-loadgen.sh [BASE_REF]      (BASE_REF defaults to main)
#
# Each run: PRODUCERS (16) producers of SIZE (128) B PUTs, one in flight
# each, for DURATION (6s), --route ROUTE (leader), all on one topic the
# first run registered; closed loop, or open loop at RATE msgs/s when set
# (then also how late the sends went out after their slots, late_p50 and
# late_p99). Prints every run and the B/A ratio of the medians.
# A_ENV / B_ENV: VAR=value settings of each side's environment (to compare
# a setting of one build, e.g. B_ENV=GOMAXPROCS=1 bench/ab-loadgen.sh HEAD
# with a clean tree).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE_REF=${1:-main}
WORK=${WORK:-$(mktemp -d /tmp/walrus-abl.XXXXXX)}
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-6s}
PRODUCERS=${PRODUCERS:-16}
ROUTE=${ROUTE:-leader}
SIZE=${SIZE:-128}
RATE=${RATE:-}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap finish EXIT
trap 'exit 130' INT TERM

build_walrus
mkdir -p "$WORK/logs"
build_at "$BASE_REF" ./cmd/walrus-bench "$WORK/bin/walrus-bench-a"
cp "$WORK/bin/walrus-bench" "$WORK/bin/walrus-bench-b"

echo "load generator A/B: $(date -u '+%Y-%m-%d %H:%M UTC'); A = walrus-bench of $BASE_REF ($(cd "$ROOT" && git rev-parse --short "$BASE_REF")), B = of the working tree ($(cd "$ROOT" && git rev-parse --short HEAD)); node of the working tree; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rounds $ROUNDS, $DURATION per run, $PRODUCERS producers, PUT $SIZE B, one in flight, ${RATE:+open loop at $RATE msgs/s, }route $ROUTE, --fsync always, rf=3; load generator env A: ${A_ENV:-none}, B: ${B_ENV:-none}"
walrus_start always >/dev/null
"$WORK/bin/walrus-bench" --addr "$(walrus_addrs)" --register --rf 3 --topic abl --producers "$PRODUCERS" --size "$SIZE" \
	--duration 2s --quiet >/dev/null || true
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then order="a b"; else order="b a"; fi
	for v in $order; do
		side_env=A_ENV
		[ "$v" = b ] && side_env=B_ENV
		env ${!side_env:-} "$WORK/bin/walrus-bench-$v" --addr "$(walrus_addrs)" --route "$ROUTE" --topic abl --producers "$PRODUCERS" \
			--size "$SIZE" --batch 1 ${RATE:+--rate "$RATE"} --duration "$DURATION" --quiet --json-file "$WORK/logs/$v-$r.json" >/dev/null || true
	done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
# field FILE KEY: a figure of the run's JSON; late_p50 / late_p99 are those
# of its send_late_ms object (open loop), 0 without one
field() {
	case $2 in
	late_*)
		{ grep -o '"send_late_ms":{[^}]*}' "$1" 2>/dev/null || true; } | grep -o "\"${2#late_}\":[0-9.e+-]*" | cut -d: -f2 | grep . || echo 0
		;;
	*) json_field "$1" "$2" ;;
	esac
}
echo
printf '%-3s %-5s %12s %9s %9s %9s %9s\n' var round msgs/s p50_ms p99_ms late_p50 late_p99
for r in $(seq "$ROUNDS"); do
	for v in a b; do
		f=$WORK/logs/$v-$r.json
		printf '%-3s %-5s %12.0f %9s %9s %9s %9s\n' "$v" "$r" "$(field "$f" msgs_per_s)" "$(field "$f" p50)" "$(field "$f" p99)" \
			"$(field "$f" late_p50)" "$(field "$f" late_p99)"
	done
done
echo
echo "medians over rounds (B/A):"
for k in msgs_per_s p50 p99 ${RATE:+late_p50 late_p99}; do
	ma=$(for r in $(seq "$ROUNDS"); do field "$WORK/logs/a-$r.json" "$k"; done | median)
	mb=$(for r in $(seq "$ROUNDS"); do field "$WORK/logs/b-$r.json" "$k"; done | median)
	printf '  %-11s A %10.3f  B %10.3f  B/A %.2f\n' "$k" "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN { print b / a }')"
done
echo "raw outputs: $WORK/logs"
