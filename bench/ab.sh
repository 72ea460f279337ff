#!/usr/bin/env bash
# A/B comparison of two builds of the node on real processes, alternated in
# one session so that the machine's noise hits both alike. From the
# repository root:
#
#   bench/ab.sh [BASE_REF]          (BASE_REF defaults to main)
#
# Builds `walrus` twice: A from BASE_REF (git archive of that commit), B
# from the working tree. walrus-bench and fsyncrate come from the working
# tree and are the same for both. Then ROUNDS times (order A,B then B,A,
# alternating): start a fresh 3-node cluster (--fsync always, topics rf=3)
# on loopback ports 29091-29093 with that build and run, SIZE (128) B messages,
# 16 producers:
#
#   put       PUT, one request in flight per producer, closed loop
#   mput      MPUT batches of 100, one in flight, closed loop
#   half-put  PUT in open loop at half of this round's put msgs/s
#   half-mput MPUT in open loop at half of this round's mput msgs/s
#   get       GET, PRODUCERS consumers sharing the cursor of the topic the
#             mput run wrote (list mput first), one GET in flight each
#   read      one reader reading everything the mput run wrote from offset
#             0, READ batches of 1000 (list mput first; as compare.sh's (c))
#   read16    the same with PRODUCERS readers splitting the offsets
#
# The open-loop runs write to the topics the closed-loop runs warmed up:
# the first writes to a freshly registered topic wait for its segment
# files to be created (file + directory fsync on every replica), which in
# open loop backs the schedule up and dominates p99 (see BENCHMARKS.md).
#
# and measure the disk's fdatasync rate after each cluster. The summary
# table at the end lists every run and the B/A ratio of the medians.
# Knobs: ROUNDS (3), DURATION (8s), PRODUCERS (16), SIZE (128), WORK, WORKLOADS,
# ROUTE (any: producers write through every node; leader: to the segment
# leader, as the Go client does);
# A_FLAGS / B_FLAGS: node flags of each side, A_ENV / B_ENV: VAR=value
# settings of its nodes' environment (to compare a setting, e.g.
# B_ENV=GOMAXPROCS=1 bench/ab.sh HEAD with a clean tree).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE_REF=${1:-main}
WORK=${WORK:-$(mktemp -d /tmp/walrus-ab.XXXXXX)}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
PRODUCERS=${PRODUCERS:-16}
ROUTE=${ROUTE:-any}
SIZE=${SIZE:-128}
WORKLOADS=${WORKLOADS:-put mput half-put half-mput}
WALRUS_CLIENT_BASE=${WALRUS_CLIENT_BASE:-29090}
WALRUS_RAFT_BASE=${WALRUS_RAFT_BASE:-29100}
WALRUS_HTTP_BASE=${WALRUS_HTTP_BASE:-29110}
mkdir -p "$WORK/logs" "$WORK/a" "$WORK/b" "$WORK/bin"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap finish EXIT
trap 'exit 130' INT TERM

base=$(cd "$ROOT" && git rev-parse --short "$BASE_REF")
head=$(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- . ':!BENCHMARKS.md' || echo '+dirty')
build_at "$BASE_REF" ./cmd/walrus "$WORK/a/walrus"
(cd "$ROOT" && go build -o "$WORK/b/walrus" ./cmd/walrus &&
	go build -o "$WORK/bin/walrus-bench" ./cmd/walrus-bench &&
	go build -o "$WORK/bin/fsyncrate" ./bench/fsyncrate)

B=$WORK/bin/walrus-bench
bench() { # NAME ARGS...
	local name=$1
	shift
	{ run "$B" --addr "$(walrus_addrs)" --route "$ROUTE" --quiet --json-file "$WORK/logs/$name.json" "$@" || true; } >"$WORK/logs/$name.txt" 2>&1
}
declare -A maxrate
one() { # VARIANT ROUND
	local v=$1 r=$2 w name flags env
	cp "$WORK/$v/walrus" "$WORK/bin/walrus"
	if [ "$v" = a ]; then flags=${A_FLAGS:-} env=${A_ENV:-}; else flags=${B_FLAGS:-} env=${B_ENV:-}; fi
	WALRUS_NODE_FLAGS=$flags WALRUS_NODE_ENV=$env walrus_start always >/dev/null
	for w in $WORKLOADS; do
		name="$v-$r-$w"
		case $w in
		put) bench "$name" --register --rf 3 --topic "ab-put-$r" --producers "$PRODUCERS" --size "$SIZE" --batch 1 --duration "$DURATION" ;;
		mput) bench "$name" --register --rf 3 --topic "ab-mput-$r" --producers "$PRODUCERS" --size "$SIZE" --batch 100 --duration "$DURATION" ;;
		half-put) bench "$name" --topic "ab-put-$r" --producers "$PRODUCERS" --size "$SIZE" --batch 1 \
			--rate "$(awk -v m="$(json_field "$WORK/logs/$v-$r-put.json" msgs_per_s)" 'BEGIN { printf "%d", m / 2 }')" --duration "$DURATION" ;;
		half-mput) bench "$name" --topic "ab-mput-$r" --producers "$PRODUCERS" --size "$SIZE" --batch 100 \
			--rate "$(awk -v m="$(json_field "$WORK/logs/$v-$r-mput.json" msgs_per_s)" 'BEGIN { printf "%d", m / 2 }')" --duration "$DURATION" ;;
		get) bench "$name" --topic "ab-mput-$r" --producers 0 --consumers "$PRODUCERS" --consume get --duration "$DURATION" ;;
		read) bench "$name" --topic "ab-mput-$r" --producers 0 --consumers 1 --consume read --read-max 1000 --from start --duration 120s ;;
		read16) bench "$name" --topic "ab-mput-$r" --producers 0 --consumers "$PRODUCERS" --consume read --read-max 1000 --from start --duration 120s ;;
		esac
	done
	stop_all
	"$WORK/bin/fsyncrate" --dir "$WORK" --block 4096 --duration 2s >"$WORK/logs/$v-$r-fsync.txt"
}

echo "walrus A/B: $(date -u '+%Y-%m-%d %H:%M UTC'); A = $BASE_REF ($base), B = working tree ($head)"
echo "machine: $(nproc) cores, $(uname -sr), $(go version | cut -d' ' -f3); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rounds $ROUNDS, $DURATION per run, $PRODUCERS producers, route $ROUTE, $SIZE B, --fsync always (unless the node flags set it), rf=3; node flags A: ${A_FLAGS:-none}, B: ${B_FLAGS:-none}; node env A: ${A_ENV:-none}, B: ${B_ENV:-none}; data on $(df -T "$WORK" | awk 'NR == 2 { print $2 " " $1 }')"
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then order="a b"; else order="b a"; fi
	for v in $order; do
		one "$v" "$r"
		echo "round $r $v done ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))" >&2
	done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-10s %-3s %-5s %12s %9s %9s %9s %12s\n' workload var round msgs/s p50_ms p99_ms p99.9_ms fsyncs/s
for w in $WORKLOADS; do
	for r in $(seq "$ROUNDS"); do
		for v in a b; do
			f=$WORK/logs/$v-$r-$w.json
			[ -f "$f" ] || continue
			printf '%-10s %-3s %-5s %12.0f %9s %9s %9s %12s\n' "$w" "$v" "$r" "$(json_field "$f" msgs_per_s)" "$(json_field "$f" p50)" \
				"$(json_field "$f" p99)" "$(json_field "$f" p99.9)" "$(grep -o '= [0-9]* syncs/s' "$WORK/logs/$v-$r-fsync.txt" | cut -d' ' -f2)"
		done
	done
done
echo
echo "medians over rounds (B/A):"
for w in $WORKLOADS; do
	for k in msgs_per_s p50 p99; do
		ma=$(for r in $(seq "$ROUNDS"); do json_field "$WORK/logs/a-$r-$w.json" "$k"; done | median)
		mb=$(for r in $(seq "$ROUNDS"); do json_field "$WORK/logs/b-$r-$w.json" "$k"; done | median)
		printf '  %-10s %-11s A %10.3f  B %10.3f  B/A %.2f\n' "$w" "$k" "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN { print b / a }')"
	done
done
echo "raw outputs: $WORK/logs"
