#!/usr/bin/env bash
# Does the MPUT tail at half rate come from rollovers? From the repository
# root:
#
#   bench/halfrate-tail.sh
#
# For each value of SEGMENTS (default "1000000 100000000 1000000
# 100000000": the default segment size, where a rollover comes every
# 2-3 s at these rates, alternated with one no run reaches), start a fresh
# 3-node cluster (--fsync FSYNC, rf=3) with WALRUS_MAX_SEGMENT_ENTRIES set
# to it, run 16 MPUT x100 producers (128 B) closed loop for 6 s, then in
# open loop at half of that on the same (warm) topic for DURATION (8s), and
# print one line per cluster: the maximum, the half rate achieved and its
# latency percentiles (ms, from the scheduled send), then how many requests
# took longer than SLOW_OVER (4ms) and how many of those fell in stalls:
# 20 ms windows in which at least half the producers were slow at once
# (walrus-bench --slow-log). FRACTION (0.5) sets the open-loop rate as a
# fraction of the maximum (0.25: a quarter); SIZE (128) the message size;
# ROUTE (any) where the producers write: any, or leader (walrus-bench
# --route, as the Go client routes writes); RATE (msgs/s) runs the open
# loop at that rate instead of FRACTION of the maximum, for comparing
# settings that move the maximum at one load.
# Beside the open loop, bench/freezeprobe counts the machine's freezes
# (a real-time sleeper waking over 3 ms late: nothing on the machine
# ran meanwhile) and how regularly they come (R on a 100 ms circle).
# BATCH (100) sets the entries per request (1: PUT instead of MPUT).
# From the nodes' /metrics over the open loop, each node's share of
# requests (timed at the node that took them), WAL appends and
# replication rounds over 1, 2.5, 5 and 10 ms.
# DISK_ALONE=1 also runs, after each cluster stops, the disk alone at the open
# loop's rate (bench/fsyncrate --msgs: three files group-committing, a
# request done once two synced it, latency from its slot): what the disk
# gives a replicated write at that rate then, with no sockets or CPU work.
# FSYNC (always) is the nodes' --fsync (interval:1s: no sync on the write path).
# TRACE_SYNCS=1 (needs perf, as root) also counts the nodes' fdatasync
# calls during the open loop (perf trace): all of them (a second, mean
# duration) and those over 3 ms, with how regularly those end: R, the
# length of the mean of their end times as angles on a 100 ms circle (1:
# all end at the same phase of a 100 ms clock; near 0: no such clock).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/walrus-halfrate.XXXXXX)}
SEGMENTS=${SEGMENTS:-1000000 100000000 1000000 100000000}
DURATION=${DURATION:-8s}
FRACTION=${FRACTION:-0.5}
SIZE=${SIZE:-128}
BATCH=${BATCH:-100}
ROUTE=${ROUTE:-any}
RATE=${RATE:-}
SLOW_OVER=${SLOW_OVER:-4ms}
TRACE_SYNCS=${TRACE_SYNCS:-}
FSYNC=${FSYNC:-always}
DISK_ALONE=${DISK_ALONE:-}
# TRACE_SYNCS sums every fdatasync over the open loop's middle: DURATION - 2 s
SUM_SECONDS=$(awk -v d="${DURATION%s}" 'BEGIN { print d - 2 }')
# scrape WHEN: every node's /metrics into $WORK/metrics-<node>.WHEN
scrape() {
	local i
	for i in 1 2 3; do
		node_metrics "$i" >"$WORK/metrics-$i.$1"
	done
}

# phases: from the nodes' histograms over the open loop, the share of
# each node's PUT/MPUT requests (at the entry node), WAL appends and
# replication rounds that took longer than 1, 2.5, 5 and 10 ms: where a
# slow request spent its time, beside the load generator's view
phases() {
	local i h
	for i in 1 2 3; do
		for h in 'walrus_request_seconds_bucket{command="PUT"' 'walrus_request_seconds_bucket{command="MPUT"' \
			walrus_wal_append_seconds_bucket walrus_replication_round_seconds_bucket; do
			awk -v h="$h" -v node="$i" 'FNR == 1 { f++ }
				index($0, h) == 1 { match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); if (f == 1) b[le] = $NF; else a[le] = $NF }
				END { n = a["+Inf"] - b["+Inf"]; if (n <= 0) exit
					name = h; sub(/_bucket/, "", name); sub(/walrus_/, "", name)
					printf "  node %d %-36s %7d", node, name, n
					split("0.001 0.0025 0.005 0.01", L, " ")
					for (k = 1; k <= 4; k++) printf "  >%gms %5.2f%%", L[k] * 1000, 100 * (n - (a[L[k]] - b[L[k]])) / n
					printf "\n" }' "$WORK/metrics-$i.before" "$WORK/metrics-$i.after"
		done
	done
}

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap finish EXIT
trap 'exit 130' INT TERM
build_walrus
B=$WORK/bin/walrus-bench

echo "halfrate-tail: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD), open loop at ${RATE:-$FRACTION of the maximum}${RATE:+ msgs/s}, $SIZE B, batch $BATCH, route $ROUTE, --fsync $FSYNC, load $(cut -d' ' -f1-3 /proc/loadavg)"
for segs in $SEGMENTS; do
	export WALRUS_MAX_SEGMENT_ENTRIES=$segs
	walrus_start "$FSYNC" >/dev/null
	"$B" --addr "$(walrus_addrs)" --register --topic h --producers 16 --size "$SIZE" --batch "$BATCH" --route "$ROUTE" --duration 6s --quiet \
		--json-file "$WORK/max.json" >/dev/null || true
	max=$(json_field "$WORK/max.json" msgs_per_s)
	half=$(awk -v m="$max" -v f="$FRACTION" 'BEGIN { printf "%d", m * f }')
	[ -z "$RATE" ] || half=$RATE
	tracer= summer=
	if [ -n "$TRACE_SYNCS" ]; then
		# and all of them, summed per thread, over DURATION - 2 s from 1 s
		# on (inside the open loop, which starts 0.5 s from now)
		(sleep 1 && perf trace -s -e fdatasync -p "$(paste -sd, "$WORK/pids")" -o "$WORK/syncsum.txt" -- \
			sleep "$SUM_SECONDS" >/dev/null 2>&1) &
		summer=$!
		# every node's fdatasync calls that took over 3 ms, while the open loop runs
		perf trace -e fdatasync --duration 3 -p "$(paste -sd, "$WORK/pids")" -o "$WORK/syncs.txt" -- \
			sleep "$(awk -v d="${DURATION%s}" 'BEGIN { print d + 1 }')" 2>/dev/null &
		tracer=$!
		sleep 0.5
	fi
	scrape before
	FREEZES=1 with_freezes half "$B" --addr "$(walrus_addrs)" --topic h --producers 16 --size "$SIZE" --batch "$BATCH" --route "$ROUTE" --rate "$half" --duration "$DURATION" --quiet \
		--json-file "$WORK/half.json" --slow-log "$WORK/slow.txt" --slow-over "$SLOW_OVER" >/dev/null || true
	printf 'segment entries %-10s closed loop %8.0f msgs/s; open loop at %8.0f msgs/s: p50 %s p99 %s p99.9 %s max %s ms\n' \
		"$segs" "$max" "$(json_field "$WORK/half.json" msgs_per_s)" "$(json_field "$WORK/half.json" p50)" \
		"$(json_field "$WORK/half.json" p99)" "$(json_field "$WORK/half.json" p99.9)" "$(json_field "$WORK/half.json" max)"
	# stalls: 20 ms windows (by scheduled send) in which at least 8 of the
	# 16 producers had a request over SLOW_OVER
	awk -v over="$SLOW_OVER" -v n="$(json_field "$WORK/half.json" count)" '{ w = int($1 / 20000); if (!((w, $3) in seen)) { seen[w, $3] = 1; prods[w]++ }; reqs[w]++; total++ }
		END { for (w in prods) if (prods[w] >= 8) { stalls++; inside += reqs[w] }
			printf "  requests over %s: %d of %d; %d stalls (20 ms windows where >= 8 producers were slow) hold %d of them\n", over, total, n, stalls, inside }' "$WORK/slow.txt"
	echo "  machine $(cat "$WORK/logs/half.freezes")"
	# the load generator's own timing: its sends after their slots
	grep -o '"send_late_ms":{[^}]*}' "$WORK/half.json" | sed 's/^"send_late_ms"://' >"$WORK/late.json" || true
	echo "  the load generator's sends after their slot (counted in the latencies): p50 $(json_field "$WORK/late.json" p50) p99 $(json_field "$WORK/late.json" p99) max $(json_field "$WORK/late.json" max) ms"
	scrape after
	phases
	if [ -n "$tracer" ]; then
		wait "$tracer" || true
		wait "$summer" || true
		awk -v d="$SUM_SECONDS" '$1 == "fdatasync" { c += $2; t += $4 } END { if (c) printf "  fdatasyncs on the three nodes meanwhile: %.0f a second, mean %.0f us\n", c / d, t * 1000 / c }' "$WORK/syncsum.txt"
		awk '/fdatasync/ { gsub(/[()]/, ""); n++; if ($2 > m) m = $2; a = 2 * 3.14159265 * ($1 + $2) / 100; c += cos(a); s += sin(a) }
			END { printf "  fdatasyncs over 3 ms on the three nodes meanwhile: %d, the longest %.1f ms; their ends on a 100 ms circle: R %.2f\n", n, m, n ? sqrt(c * c + s * s) / n : 0 }' "$WORK/syncs.txt"
	fi
	stop_all
	if [ -n "$DISK_ALONE" ]; then
		FREEZES=1 with_freezes disk-alone disk_alone "$(json_field "$WORK/half.json" msgs_per_s)" "$BATCH" "$SIZE" "$DURATION" 2>/dev/null >"$WORK/disk-alone.txt"
		read -r fp50 fp99 fp999 < <(disk_alone_ms "$WORK/disk-alone.txt") || true
		echo "  the disk alone at that rate (fsyncrate --msgs, 3 files, done on 2): p50 $fp50 p99 $fp99 p99.9 $fp999 ms; machine $(cat "$WORK/logs/disk-alone.freezes")"
	fi
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
