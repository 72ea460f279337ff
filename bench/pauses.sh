#!/usr/bin/env bash
# When does this machine's host pause it? From the repository root:
#
#   bench/pauses.sh
#
# Runs bench/freezeprobe (a real-time sleeper counting wake-ups over 3 ms
# late: nothing on the machine ran meanwhile) for DURATION (6s, whole
# seconds) beside each of these loads, one at a time, and prints one line
# per load:
#
#   idle           nothing
#   busyN          N shell busy loops (N CPUs busy, no I/O)
#   wW             fsyncrate --writers W --zero-ahead: W files, each
#                  appended 4 KiB and fdatasynced, as fast as the disk goes
#   wW@R           the same paced to R cycles a second per writer
#   busyN+wW[@R]   both at once
#   redis          one Redis, appendfsync always, taking XADDs of 128 B
#                  from 16 clients (redis-benchmark -P 1)
#
# with the fdatasyncs a second of each writer load (XADDs a second for
# Redis) and the machine's busy share over the run (/proc/stat: neither
# idle nor waiting for the disk). LOADS (space-separated names as above)
# picks the loads; the default runs the table in BENCHMARKS.md ("What
# brings the host's pauses on"). The probe wants root (SCHED_FIFO);
# without it, it says so and its figures mix in CPU contention.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/walrus-pauses.XXXXXX)}
DURATION=${DURATION:-6s}
LOADS=${LOADS:-"idle busy2 w1 w3 busy1+w1 busy1+w3 busy2+w1 busy2+w3 busy1+w3@300 busy2+w3@300 busy2+w1@1000 redis"}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
loops=()
stop_loops() {
	local p
	for p in "${loops[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${loops[@]}"; do wait "$p" 2>/dev/null || true; done
	loops=()
}
trap 'stop_loops; finish' EXIT
trap 'exit 130' INT TERM

if [[ ! $DURATION =~ ^[1-9][0-9]*s$ ]]; then
	echo "pauses: DURATION must be whole seconds, like 6s (got $DURATION)" >&2
	exit 2
fi
secs=${DURATION%s}

# parse LOAD: sets nbusy, writers, rate and redis from a load's name, or fails
parse() {
	local rest=$1
	nbusy=0 writers=0 rate='' redis=''
	case $rest in
	idle) return 0 ;;
	redis) redis=1 && return 0 ;;
	esac
	if [[ $rest =~ ^busy([0-9]+)\+?(.*)$ ]]; then nbusy=${BASH_REMATCH[1]} rest=${BASH_REMATCH[2]}; fi
	if [[ $rest =~ ^w([1-9][0-9]*)(@([1-9][0-9]*))?$ ]]; then
		writers=${BASH_REMATCH[1]} rate=${BASH_REMATCH[3]}
	elif [ -n "$rest" ]; then
		return 1
	fi
}
for load in $LOADS; do
	parse "$load" || { echo "pauses: unknown load $load (see the header of bench/pauses.sh)" >&2; exit 2; }
done

build_walrus
mkdir -p "$WORK/disk"
echo "pauses: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $DURATION a load"

busy() { awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; } # idle+iowait total

for load in $LOADS; do
	parse "$load"
	for _ in $(seq "$nbusy"); do
		(end=$((SECONDS + secs + 2)); while [ $SECONDS -lt $end ]; do :; done) &
		loops+=($!)
	done
	if [ -n "$redis" ]; then
		redis_start always >/dev/null
		value=$(head -c 128 /dev/zero | tr '\0' v)
	fi
	read -r i1 t1 <<<"$(busy)"
	what=
	# the probe runs beside each load for as long as it does (with_freezes)
	if [ "$writers" -gt 0 ]; then
		FREEZES=1 with_freezes "$load" "$WORK/bin/fsyncrate" --dir "$WORK/disk" --writers "$writers" --zero-ahead ${rate:+--rate "$rate"} --duration "$DURATION" >"$WORK/load.txt" 2>&1
		what=$(grep -o '= [0-9]* syncs/s' "$WORK/load.txt" | tr -d '=' || true)
	elif [ -n "$redis" ]; then
		FREEZES=1 with_freezes "$load" timeout "$secs" redis-benchmark -p "$REDIS_PORT" -c 16 -n 100000000 -P 1 XADD k '*' v "$value" >"$WORK/load.txt" 2>&1 || true
		what="$(tr '\r' '\n' <"$WORK/load.txt" | grep -o 'rps=[0-9.]* (overall: [0-9.]*' | tail -1 | sed 's/.*overall: //') XADD/s"
	else
		FREEZES=1 with_freezes "$load" sleep "$secs"
	fi
	read -r i2 t2 <<<"$(busy)"
	stop_loops
	if [ -n "$redis" ]; then stop_all; fi
	printf '%-14s busy %3.0f %%  %-16s %s\n' "$load" "$(awk -v a="$i1" -v b="$i2" -v t="$((t2 - t1))" 'BEGIN { print 100 - (b - a) * 100 / t }')" "$what" \
		"$(sed -E 's/^freezes: //; s/ \(a [^ ]* sleeper at SCHED_FIFO\)//' "$WORK/logs/$load.freezes")"
done
rm -rf "$WORK/disk"
