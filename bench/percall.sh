#!/usr/bin/env bash
# What one acknowledged write costs each process, from the repository root:
#
#   bench/percall.sh [REF]      (REF: a commit to build instead of the working tree)
#
# Starts a 3-node cluster (--fsync always, rf=3, loopback), writes 2 s to
# warm a topic, then runs 16 producers of 128 B PUTs, one in flight each,
# for DURATION (8s) with --route ROUTE (leader), and samples every node
# and the load generator 1 s into the run and after 4 s more (the samples'
# own time, ~0.4 s each on a busy machine, counted in the rates): CPU time
# (/proc/<pid>/stat), read and write system calls (/proc/<pid>/io syscr,
# syscw: sockets and files alike) and voluntary and involuntary context
# switches (summed over /proc/<pid>/task/*/status). Printed per
# acknowledged message, one line per process; the node with the most CPU
# is the topic's segment leader. Also the machine's idle and I/O-wait
# share between the samples (/proc/stat), and from each node's /metrics
# between them: its WAL appends (per second and mean time, queue + write +
# fdatasync), the replication rounds it led (send to a follower's durable
# answer) and the PUTs (MPUTs with BATCH) it answered clients (mean time
# at the node).
# Knobs: DURATION, ROUTE, PRODUCERS (16), BATCH (1: PUT; more: MPUTs of
# that many messages, the figures still per message), RATE (msgs/s: an
# open loop at that rate instead of the closed loop),
# TRACE_SYNCS=1: also each node's fdatasync calls over those 4 s, how many
# a second and their mean duration (perf trace, as root).
# PERF_RECORD=FILE: also record the whole machine's call stacks over those
# 4 s with perf (as root), for `perf report -i FILE`, and print where the
# machine's CPU went: each process group's kernel and user share of the
# samples (idle included, so a share of 100 % is every CPU for 4 s), and
# kernel paths in the nodes (overlapping), as a share and as CPU us per
# acknowledged message.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REF=${1:-}
WORK=${WORK:-$(mktemp -d /tmp/walrus-percall.XXXXXX)}
DURATION=${DURATION:-8s}
ROUTE=${ROUTE:-leader}
PRODUCERS=${PRODUCERS:-16}
BATCH=${BATCH:-1}
RATE=${RATE:-}
PERF_RECORD=${PERF_RECORD:-}
TRACE_SYNCS=${TRACE_SYNCS:-}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap finish EXIT
trap 'exit 130' INT TERM

build_walrus
if [ -n "$REF" ]; then
	build_at "$REF" ./cmd/walrus "$WORK/bin/walrus"
fi
B=$WORK/bin/walrus-bench
echo "percall: $(date -u '+%Y-%m-%d %H:%M UTC'), node from ${REF:-the working tree} ($(cd "$ROOT" && git rev-parse --short "${REF:-HEAD}")), route $ROUTE, batch $BATCH, ${RATE:+open loop at $RATE msgs/s, }load $(cut -d' ' -f1-3 /proc/loadavg)"
walrus_start always >/dev/null
"$B" --addr "$(walrus_addrs)" --register --topic percall --producers "$PRODUCERS" --duration 2s --quiet >/dev/null || true

# snap PID...: "pid ticks syscr syscw voluntary involuntary" per process
snap() {
	local p
	for p in "$@"; do
		printf '%s %s %s %s\n' "$p" "$(awk '{ print $14 + $15 }' "/proc/$p/stat")" \
			"$(awk '/^sysc[rw]/ { printf "%s ", $2 }' "/proc/$p/io")" \
			"$(cat "/proc/$p/task/"*/status 2>/dev/null | awk '/^voluntary_ctxt/ { v += $2 } /^nonvoluntary_ctxt/ { n += $2 } END { printf "%d %d", v, n }')"
	done
}
# metrics: "node series sum count" for the timings every node exports
metrics() {
	local i
	for i in 1 2 3; do
		node_metrics "$i" |
			awk -v i="$i" '/^walrus_(wal_append|replication_round)_seconds_(sum|count) / || /^walrus_request_seconds_(sum|count)\{command="M?PUT"\} / {
				k = $1; sub(/_(sum|count)/, "", k); sub(/\{.*/, "", k); v[k, ($1 ~ /_sum/)] += $2; keys[k] = 1 }
				END { for (k in keys) print i, k, v[k, 1] + 0, v[k, 0] + 0 }'
	done
}
now() { date +%s.%N; }
mid() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a + b) / 2 }'; }
cpu() { awk '/^cpu / { print $5, $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; } # idle iowait total

"$B" --addr "$(walrus_addrs)" --route "$ROUTE" --topic percall --producers "$PRODUCERS" --batch "$BATCH" ${RATE:+--rate "$RATE"} --duration "$DURATION" --quiet \
	--json-file "$WORK/p.json" >/dev/null &
bp=$!
sleep 1
mapfile -t pids <"$WORK/pids"
# each sample takes a while on a busy machine (~0.4 s for the snapshots, as
# long again for /metrics): the rates divide by the time between the
# samples' midpoints, not by the 4 s slept between them
b=$(now); snap "${pids[@]}" "$bp" >"$WORK/s1"; ts1=$(mid "$b" "$(now)")
b=$(now); metrics >"$WORK/m1"; tm1=$(mid "$b" "$(now)")
read -r i1 w1 t1 <<<"$(cpu)"
tracep=
if [ -n "$TRACE_SYNCS" ]; then
	perf trace -s -e fdatasync -p "$(paste -sd, "$WORK/pids")" -o "$WORK/syncs.txt" -- sleep 4 >/dev/null 2>&1 &
	tracep=$!
fi
perfp=
if [ -n "$PERF_RECORD" ]; then
	perf record -a -g -o "$PERF_RECORD" -- sleep 4 >/dev/null 2>&1 &
	perfp=$!
fi
sleep 4
if ! kill -0 "$bp" 2>/dev/null; then
	echo "percall: the run ended before the second sample (5 s in): DURATION ($DURATION) must be longer" >&2
	exit 1
fi
b=$(now); snap "${pids[@]}" "$bp" >"$WORK/s2"; ts2=$(mid "$b" "$(now)")
b=$(now); metrics >"$WORK/m2"; tm2=$(mid "$b" "$(now)")
read -r i2 w2 t2 <<<"$(cpu)"
[ -z "$perfp" ] || wait "$perfp" || true
[ -z "$tracep" ] || wait "$tracep" || true
wait "$bp" || true
m=$(json_field "$WORK/p.json" msgs_per_s)
echo "$(printf '%.0f' "$m") msgs/s, p50 $(json_field "$WORK/p.json" p50) ms; samples $(awk -v a="$ts1" -v b="$ts2" 'BEGIN { printf "%.2f", b - a }') s apart; machine idle $(awk -v a="$i1" -v b="$i2" -v t="$((t2 - t1))" 'BEGIN { printf "%.0f", (b - a) * 100 / t }') %, I/O wait $(awk -v a="$w1" -v b="$w2" -v t="$((t2 - t1))" 'BEGIN { printf "%.0f", (b - a) * 100 / t }') %"
paste "$WORK/s1" "$WORK/s2" | awk -v m="$m" -v bp="$bp" -v secs="$(awk -v a="$ts1" -v b="$ts2" 'BEGIN { print b - a }')" '{
	n = m * secs
	who = ($1 == bp) ? "walrus-bench" : "node pid " $1
	printf "%-16s cpu %5.1f%%  %6.1f us/msg  reads/msg %.2f  writes/msg %.2f  ctx switches/msg %.2f + %.2f involuntary\n",
		who, ($8 - $2) / secs, ($8 - $2) * 10000 / n, ($9 - $3) / n, ($10 - $4) / n, ($11 - $5) / n, ($12 - $6) / n
}'
awk -v b="$BATCH" -v secs="$(awk -v a="$tm1" -v b="$tm2" 'BEGIN { print b - a }')" -v p="$(paste -sd' ' "$WORK/pids")" 'BEGIN { split(p, pid, " ")
		name["walrus_wal_append_seconds"] = "WAL appends"; name["walrus_replication_round_seconds"] = "replication rounds"
		name["walrus_request_seconds"] = (b > 1 ? "MPUTs answered" : "PUTs answered") }
	NR == FNR { s[$1, $2] = $3; c[$1, $2] = $4; next }
	{ n = $4 - c[$1, $2]; if (n > 0) line[$1] = line[$1] sprintf("; %s %.0f/s, mean %.0f us", name[$2], n / secs, ($3 - s[$1, $2]) * 1e6 / n) }
	END { for (i = 1; i <= 3; i++) if (i in line) printf "node %d, pid %s%s\n", i, pid[i], line[i] }' "$WORK/m1" "$WORK/m2"
if [ -n "$PERF_RECORD" ] && [ ! -s "$PERF_RECORD" ]; then
	echo "percall: no perf record (is perf installed, and are we root?)" >&2
elif [ -n "$PERF_RECORD" ]; then
	# a sample's share of the machine is CPUs x 1 s of CPU time a second:
	# divided by the messages a second, CPU us per message
	us=$(awk -v m="$m" -v c="$(nproc)" 'BEGIN { printf "%.4f", c * 1e6 / m / 100 }')
	echo "CPU from perf samples over the 4 s (share of all CPUs; us per acknowledged message):"
	perf report -i "$PERF_RECORD" -g none --no-children --sort comm,dso --stdio 2>/dev/null |
		awk -v us="$us" '/^#/ || NF < 3 { next } { p = $1; sub(/%/, "", p); who = $2
			if (who == "walrus") g = "nodes"; else if (who == "walrus-bench") g = "load generator"
			else if (who == "swapper") g = "idle"; else if (who ~ /^kworker/) g = "kernel workers"; else g = "other"
			part = ($3 == "[kernel.kallsyms]") ? "kernel" : "user"
			if (g == "idle" || g == "kernel workers" || g == "other") part = ""
			s[g (part == "" ? "" : ", " part)] += p }
			END { n = split("nodes, kernel|nodes, user|load generator, kernel|load generator, user|kernel workers|other|idle", o, "|")
				for (i = 1; i <= n; i++) printf "  %-24s %5.1f %%  %5.1f us\n", o[i], s[o[i]], s[o[i]] * us }'
	echo "  in the nodes, by kernel path (a sample counts in each path on its stack):"
	perf report -i "$PERF_RECORD" --comm walrus -g none --children --sort sym --stdio 2>/dev/null |
		awk -v us="$us" 'BEGIN { d["tcp_sendmsg"] = "socket sends (loopback: with the receiver'"'"'s delivery)"
				d["ext4_sync_file"] = "fdatasync"; d["vp_notify"] = "virtio notifications to the host (disk requests)"
				d["ext4_buffered_write_iter"] = "file writes into the page cache"; d["do_epoll_wait"] = "epoll waits"
				d["futex_wait"] = "futex waits" }
			$3 == "[k]" && ($4 in d) { p = $1; sub(/%/, "", p); printf "    %-54s %5.1f %%  %5.1f us\n", d[$4], p, p * us }'
fi
if [ -n "$TRACE_SYNCS" ] && [ ! -s "$WORK/syncs.txt" ]; then
	echo "percall: no fdatasync trace (is perf installed, and are we root?)" >&2
elif [ -n "$TRACE_SYNCS" ]; then
	# perf trace -s sums per thread ("walrus (TID), ..." then a fdatasync
	# row: calls, errors, total ms, min, avg, max, stddev): add up by node
	awk '/^ *walrus \(/ { tid = $2; gsub(/[(),]/, "", tid) } $1 == "fdatasync" { print tid, $2, $4 }' "$WORK/syncs.txt" |
		while read -r tid calls ms; do
			i=0
			for p in $(cat "$WORK/pids"); do
				i=$((i + 1))
				[ -d "/proc/$p/task/$tid" ] && echo "$i $calls $ms"
			done
		done | awk '{ c[$1] += $2; t[$1] += $3 } END { for (i = 1; i <= 3; i++) if (c[i] > 0)
			printf "node %d fdatasync: %.0f/s, mean %.0f us\n", i, c[i] / 4, t[i] * 1000 / c[i] }'
fi
