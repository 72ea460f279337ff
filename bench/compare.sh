#!/usr/bin/env bash
# Walrus against NATS JetStream and Redis, on this machine, in one run
# (issue 8). From the repository root:
#
#   bench/compare.sh            (or: just bench-compare)
#
# It installs what is missing (redis-server from apt; nats-server v2.15.2
# and the nats CLI v0.5.0 with `go install` into a scratch GOBIN), then for
# each durability setting starts a fresh cluster on loopback ports, drives
# the same workload at it and stops it:
#
#   table 1, every acknowledged write is on disk:
#     Walrus 3 nodes RF 3 --fsync always | JetStream 3 nodes R3 file
#     sync_interval: always | Redis appendonly yes, appendfsync always
#   table 2, each peer's default durability:
#     Walrus --fsync always (its default; same measurements as table 1)
#     | Walrus --fsync interval:1s (for reference) | JetStream default
#     sync_interval | Redis appendfsync everysec
#
# Workload, for 128 B and 1 KiB messages, 16 producers:
#   (a) one request in flight per producer (Walrus PUT, JetStream
#       synchronous publish, redis-benchmark XADD -P 1); for Walrus also
#       with --route leader (each producer writes to the segment leader,
#       as the Go client routes writes; (b) and the open loops below too)
#   (b) batches of 100 (Walrus MPUT of 100 with one MPUT in flight,
#       JetStream 100 async publishes then wait for their acks, Redis
#       pipelines of 100 XADDs)
#   (c) reading everything (a) and (b) wrote, in order, by one reader
#       (Walrus READ batches of 1000, JetStream ordered consumer with
#       batch 1000, Redis XRANGE COUNT 1000 via bench/redisread) and, for
#       Walrus, 16 readers splitting the offsets.
# plus, for Walrus, (a) and (b) in open loop at half the throughput just
# measured (latency from the scheduled send time), each followed by the
# disk alone at the same rate (bench/fsyncrate --msgs: three files, each
# group-committing every message as fast as it can, a message done once
# two of them synced it, latency from its slot: a replicated, fdatasynced
# write on this disk at that moment with no sockets and no other process;
# the cluster is idle meanwhile). It is a baseline, not a lower bound: a
# writer that syncs less often can do better on this machine
# (BENCHMARKS.md, "The disk alone at the half rate").
#
# Before and after, the machine's own baselines: the disk's fdatasync rate
# (fsyncrate), alone and with three files synced at once (as the three
# nodes sync on this one disk), and a loopback round trip (the transport package's
# ReplicationRound benchmark: socket sends and wake-ups, what a
# one-in-flight write is made of besides the disk), so that runs on
# machines that differ can be told apart. Beside every run of every
# system, bench/freezeprobe counts the machine's pauses (FREEZES=1; the
# probe costs each system alike, ~3 % of one CPU), listed at the end for
# the write runs and the read runs apart.
#
# Everything is printed and kept under $WORK (default a new /tmp dir);
# raw tool outputs are in $WORK/logs. What the servers stored is deleted
# when the script ends (KEEP_DATA=1 keeps it). MB/s is msgs/s x payload size / 10^6
# for every system. Servers started here are stopped on exit.
#
# Knobs (environment): SIZES ("128 1024"), PRODUCERS (16), DURATION (8s,
# Walrus runs), NATS_SYNC_MSGS (32000), NATS_ASYNC_MSGS (320000),
# REDIS_MSGS (50000), REDIS_PIPE_MSGS (1000000), TOOLS (GOBIN for the NATS
# binaries, default /tmp/walrus-bench-tools), WORK.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/walrus-compare.XXXXXX)}
TOOLS=${TOOLS:-/tmp/walrus-bench-tools}
export FREEZES=1
SIZES=${SIZES:-128 1024}
PRODUCERS=${PRODUCERS:-16}
DURATION=${DURATION:-8s}
NATS_SYNC_MSGS=${NATS_SYNC_MSGS:-32000}
NATS_ASYNC_MSGS=${NATS_ASYNC_MSGS:-320000}
REDIS_MSGS=${REDIS_MSGS:-50000}
REDIS_PIPE_MSGS=${REDIS_PIPE_MSGS:-1000000}
NATS_SERVER_VERSION=v2.15.2
NATS_CLI_VERSION=v0.5.0
NATS_SERVER=$TOOLS/nats-server
NATS=$TOOLS/nats
mkdir -p "$WORK/logs"
RESULTS=$WORK/results.tsv
: >"$RESULTS"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap finish EXIT
trap 'exit 130' INT TERM

# ---- tools ------------------------------------------------------------

install_tools() {
	if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
		log "installing redis-server (apt)"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
	fi
	mkdir -p "$TOOLS"
	if [ ! -x "$NATS_SERVER" ] || ! "$NATS_SERVER" --version | grep -q "$NATS_SERVER_VERSION"; then
		log "installing nats-server $NATS_SERVER_VERSION into $TOOLS"
		(cd "$WORK" && GOBIN=$TOOLS GOFLAGS= go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION")
	fi
	if [ ! -x "$NATS" ] || ! "$NATS" --version 2>&1 | grep -q "$NATS_CLI_VERSION"; then
		log "installing nats CLI $NATS_CLI_VERSION into $TOOLS"
		(cd "$WORK" && GOBIN=$TOOLS GOFLAGS= go install "github.com/nats-io/natscli/nats@$NATS_CLI_VERSION")
	fi
	build_walrus
}

# ---- result rows ------------------------------------------------------

# record TABLE SYSTEM PHASE SIZE MSGS_PER_S P50 P99 P999 (ms; "-" unknown)
record() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
	printf '  => %s %s %s B: %.0f msgs/s, p50 %s p99 %s p99.9 %s ms\n' "$2" "$3" "$4" "$5" "$6" "$7" "$8"
}

# jget FILE KEY [NTH]: the NTH (default 1st) number after "KEY": in a JSON file.
jget() {
	local v
	v=$({ grep -o "\"$2\":[0-9.e+-]*" "$1" 2>/dev/null || true; } | sed -n "${3:-1}p" | cut -d: -f2)
	echo "${v:--}"
}

nocomma() { tr -d ','; }

# ---- Walrus -----------------------------------------------------------

# walrus_bench (lib.sh) runs walrus-bench, shows its report, keeps its JSON

# walrus_row TABLE SYSTEM PHASE SIZE NAME ARGS...: run walrus-bench ARGS
# as NAME and record its figures as SYSTEM's PHASE row; prints its msgs/s.
walrus_row() {
	local table=$1 sys=$2 phase=$3 size=$4 name=$5
	shift 5
	walrus_bench "$name" "$@" >&2
	local j=$WORK/logs/$name.json
	record "$table" "$sys" "$phase" "$size" "$(jget "$j" msgs_per_s)" "$(jget "$j" p50)" "$(jget "$j" p99)" "$(jget "$j" p99.9)" >&2
	jget "$j" msgs_per_s
}

half() { awk -v m="$1" 'BEGIN { printf "%d", m / 2 }'; }

# disk_alone_row TABLE SYSTEM PHASE SIZE RATE BATCH: the disk alone under a
# replicated write at RATE msgs/s in requests of BATCH messages (each
# message SIZE bytes and the WAL's 20-byte record header), recorded as
# SYSTEM's PHASE row: request latency from its slot, as walrus-bench's
# open loop counts it.
disk_alone_row() {
	local table=$1 sys=$2 phase=$3 size=$4 rate=$5 batch=$6 name=$2-$3-$4 out
	with_freezes "$name" disk_alone "$rate" "$batch" "$size" "$DURATION" >"$WORK/logs/$name.txt"
	sed 's/^/  /' "$WORK/logs/$name.txt" >&2
	out=$(disk_alone_ms "$WORK/logs/$name.txt")
	# shellcheck disable=SC2086 # three numbers
	record "$table" "$sys" "$phase" "$size" "$rate" ${out:-- - -} >&2
}

walrus_suite() { # TABLE SYSTEM SIZE
	local table=$1 sys=$2 size=$3
	local w=(--producers "$PRODUCERS" --size "$size" --inflight 1)
	local max_a max_b max_al max_bl
	max_a=$(walrus_row "$table" "$sys" a "$size" "$sys-a-$size" --register --topic "cmp$size" "${w[@]}" --batch 1 --duration "$DURATION")
	if [ "$table" = 1 ]; then
		# (a) again with each producer writing to the segment leader, as
		# the Go client routes writes (--route leader), not through node
		# i mod 3, which forwards two requests in three
		max_al=$(walrus_row "$table" "$sys-leader-route" a "$size" "$sys-al-$size" --topic "cmp$size" "${w[@]}" --batch 1 \
			--route leader --duration "$DURATION")
	fi
	max_b=$(walrus_row "$table" "$sys" b "$size" "$sys-b-$size" --topic "cmp$size" "${w[@]}" --batch 100 --duration "$DURATION")
	walrus_row "$table" "$sys" c "$size" "$sys-c1-$size" --topic "cmp$size" --producers 0 --consumers 1 --consume read \
		--read-max 1000 --from start --duration 120s >/dev/null
	walrus_row "$table" "$sys" c16 "$size" "$sys-c16-$size" --topic "cmp$size" --producers 0 --consumers 16 --consume read \
		--read-max 1000 --from start --duration 120s >/dev/null
	# open loop at half the closed-loop maximum, on another topic, warmed
	# up first (1 s closed loop, not recorded): a fresh topic's first writes
	# wait for its segment files to be created on every replica, which is
	# start-up cost, not the steady-state latency the target is about
	walrus_bench "$sys-hw-$size" --register --topic "half$size" "${w[@]}" --batch 1 --duration 1s
	walrus_row "$table" "$sys" half-a "$size" "$sys-ha-$size" --topic "half$size" "${w[@]}" --batch 1 \
		--rate "$(half "$max_a")" --duration "$DURATION" >/dev/null
	if [ "$table" = 1 ]; then disk_alone_row "$table" disk-alone half-a "$size" "$(half "$max_a")" 1; fi
	walrus_row "$table" "$sys" half-b "$size" "$sys-hb-$size" --topic "half$size" "${w[@]}" --batch 100 \
		--rate "$(half "$max_b")" --duration "$DURATION" >/dev/null
	if [ "$table" = 1 ]; then disk_alone_row "$table" disk-alone half-b "$size" "$(half "$max_b")" 100; fi
	if [ "$table" = 1 ]; then
		# (b) and both open loops again with writes routed to the segment
		# leader, each open loop at half of the leader-routed maximum
		max_bl=$(walrus_row "$table" "$sys-leader-route" b "$size" "$sys-bl-$size" --topic "cmp$size" "${w[@]}" --batch 100 \
			--route leader --duration "$DURATION")
		walrus_row "$table" "$sys-leader-route" half-a "$size" "$sys-hal-$size" --topic "half$size" "${w[@]}" --batch 1 \
			--route leader --rate "$(half "$max_al")" --duration "$DURATION" >/dev/null
		disk_alone_row "$table" disk-alone-leader-route half-a "$size" "$(half "$max_al")" 1
		walrus_row "$table" "$sys-leader-route" half-b "$size" "$sys-hbl-$size" --topic "half$size" "${w[@]}" --batch 100 \
			--route leader --rate "$(half "$max_bl")" --duration "$DURATION" >/dev/null
		disk_alone_row "$table" disk-alone-leader-route half-b "$size" "$(half "$max_bl")" 100
	fi
}

# ---- NATS JetStream ---------------------------------------------------

nats_bench() { # LOGNAME ARGS...: run nats bench, show its aggregate lines
	local name=$1
	shift
	printf '$ nats --server %s bench %s\n' "$(nats_urls)" "$*"
	with_freezes "$name" "$NATS" --server "$(nats_urls)" bench "$@" --no-progress >"$WORK/logs/$name.txt" 2>&1
	grep -E "stats:|latencies per operation" "$WORK/logs/$name.txt" | sed 's/^ */  /'
}

# nats_parse LOG: "msgs/s p50 p99 p99.9" from nats bench's aggregate lines
nats_parse() {
	local rate lat
	rate=$(grep -m1 "stats:" "$1" | sed -E 's/.*stats: ([0-9,.]+) msgs\/sec.*/\1/' | nocomma)
	lat=$(grep -m1 "latencies per operation" "$1" || true)
	if [ -n "$lat" ]; then
		us() { echo "$lat" | sed -E "s/.*$1:? ([0-9,.]+)us.*/\\1/" | nocomma | awk '{ printf "%.3f", $1 / 1000 }'; }
		echo "$rate $(us P50) $(us P99) $(us 'P99\.9')"
	else
		echo "$rate - - -"
	fi
}

nats_suite() { # TABLE SYSTEM SIZE
	local table=$1 sys=$2 size=$3 stream="s$3" subj="s$3.x"
	nats_bench "$sys-a-$size" js pub sync "$subj" --stream "$stream" --create --replicas 3 --storage file \
		--clients "$PRODUCERS" --msgs "$NATS_SYNC_MSGS" --size "$size"
	record "$table" "$sys" a "$size" $(nats_parse "$WORK/logs/$sys-a-$size.txt")
	nats_bench "$sys-b-$size" js pub async "$subj" --stream "$stream" --create --replicas 3 --storage file \
		--clients "$PRODUCERS" --msgs "$NATS_ASYNC_MSGS" --batch 100 --size "$size"
	record "$table" "$sys" b "$size" $(nats_parse "$WORK/logs/$sys-b-$size.txt")
	nats_bench "$sys-c1-$size" js ordered --stream "$stream" --msgs $((NATS_SYNC_MSGS + NATS_ASYNC_MSGS)) \
		--batch 1000 --size "$size"
	record "$table" "$sys" c "$size" $(nats_parse "$WORK/logs/$sys-c1-$size.txt")
}

# ---- Redis ------------------------------------------------------------

# redis_parse LOG: "requests/s p50 p99 p99.9" from redis-benchmark's output
redis_parse() {
	local out
	out=$(tr '\r' '\n' <"$1")
	local rate p50 p99 p999
	rate=$(echo "$out" | grep -m1 "throughput summary" | awk '{ print $3 }')
	read -r _ _ p50 _ p99 _ < <(echo "$out" | grep -A2 "latency summary" | tail -1)
	p999=$(echo "$out" | awk '/% <= .* milliseconds/ { p = $1; sub("%", "", p); if (p + 0 >= 99.9) { print $3; exit } }')
	echo "$rate $p50 $p99 ${p999:--}"
}

redis_suite() { # TABLE SYSTEM SIZE
	local table=$1 sys=$2 size=$3 key="bench$3" value
	value=$(head -c "$size" /dev/zero | tr '\0' 'x')
	printf '$ redis-benchmark -p %s -c %s -n %s -P 1 XADD %s * v <%s bytes>\n' "$REDIS_PORT" "$PRODUCERS" "$REDIS_MSGS" "$key" "$size"
	with_freezes "$sys-a-$size" redis-benchmark -p "$REDIS_PORT" -c "$PRODUCERS" -n "$REDIS_MSGS" -P 1 XADD "$key" '*' v "$value" >"$WORK/logs/$sys-a-$size.txt" 2>&1
	tr '\r' '\n' <"$WORK/logs/$sys-a-$size.txt" | grep -A3 "throughput summary" | sed 's/^/  /'
	record "$table" "$sys" a "$size" $(redis_parse "$WORK/logs/$sys-a-$size.txt")
	printf '$ redis-benchmark -p %s -c %s -n %s -P 100 XADD %s * v <%s bytes>\n' "$REDIS_PORT" "$PRODUCERS" "$REDIS_PIPE_MSGS" "$key" "$size"
	with_freezes "$sys-b-$size" redis-benchmark -p "$REDIS_PORT" -c "$PRODUCERS" -n "$REDIS_PIPE_MSGS" -P 100 XADD "$key" '*' v "$value" >"$WORK/logs/$sys-b-$size.txt" 2>&1
	tr '\r' '\n' <"$WORK/logs/$sys-b-$size.txt" | grep -A3 "throughput summary" | sed 's/^/  /'
	record "$table" "$sys" b "$size" $(redis_parse "$WORK/logs/$sys-b-$size.txt")
	with_freezes "$sys-c1-$size" run "$WORK/bin/redisread" --addr "127.0.0.1:$REDIS_PORT" --key "$key" --count 1000 | tee "$WORK/logs/$sys-c1-$size.txt"
	local l
	l=$(grep "^redisread:" "$WORK/logs/$sys-c1-$size.txt")
	record "$table" "$sys" c "$size" \
		"$(echo "$l" | sed -E 's/.* s: ([0-9.]+) msgs\/s.*/\1/')" \
		"$(echo "$l" | sed -E 's/.* p50 ([0-9.]+) .*/\1/')" \
		"$(echo "$l" | sed -E 's/.* p99 ([0-9.]+) .*/\1/')" \
		"$(echo "$l" | sed -E 's/.* p99\.9 ([0-9.]+) .*/\1/')"
}

# ---- tables -----------------------------------------------------------

# table N TITLE SYSTEMS...: a markdown table of table N's rows, grouped by
# phase and size, with Walrus (fsync always) msgs/s divided by each row's.
table() {
	local n=$1 title=$2
	shift 2
	echo
	echo "#### $title"
	echo
	echo "| workload | size | system | msgs/s | MB/s | p50 ms | p99 ms | p99.9 ms | Walrus ÷ this |"
	echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
	awk -F'\t' -v n="$n" -v systems="$*" '
		function commas(n,   s, out) { s = sprintf("%d", n + 0.5); out = ""; while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }; return s out }
		BEGIN {
			split(systems, order, " ")
			np = split("a b c c16", phases, " ")
			name["a"] = "(a) 1 in flight"; name["b"] = "(b) batches of 100"
			name["c"] = "(c) read all, 1 reader"; name["c16"] = "(c) read all, 16 readers"
		}
		{ key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4; rate[key] = $5; p50[key] = $6; p99[key] = $7; p999[key] = $8; sizes[$4] = 1
		  if ($2 == "walrus") base[$3 SUBSEP $4] = $5 }
		END {
			ns = 0; for (s in sizes) sz[++ns] = s + 0
			for (i = 1; i <= ns; i++) for (j = i + 1; j <= ns; j++) if (sz[j] < sz[i]) { t = sz[i]; sz[i] = sz[j]; sz[j] = t }
			for (p = 1; p <= np; p++) for (i = 1; i <= ns; i++) for (s = 1; s in order; s++) {
				ph = phases[p]; size = sz[i]; sys = order[s]
				key = n SUBSEP sys SUBSEP ph SUBSEP size
				if (!(key in rate)) continue
				r = rate[key] + 0; b = base[ph SUBSEP size] + 0
				ratio = (r > 0 && b > 0) ? sprintf("%.2f", b / r) : "-"
				printf "| %s | %d B | %s | %s | %.1f | %s | %s | %s | %s |\n", name[ph], size, sys, commas(r), r * size / 1e6, p50[key], p99[key], p999[key], ratio
			}
		}' "$RESULTS"
}

targets() {
	# the targets are stated for 128 B messages: nothing to judge without them
	case " $SIZES " in *" 128 "*) ;; *) return 0 ;; esac
	echo
	echo "#### Targets (issue 8), 128 B, this run"
	echo
	awk -F'\t' '
		function commas(n,   s, out) { s = sprintf("%d", n + 0.5); out = ""; while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }; return s out }
		$1 == 1 { r[$2 SUBSEP $3 SUBSEP $4] = $5; q[$2 SUBSEP $3 SUBSEP $4] = $7 }
		function get(a, s, p) { return a[s SUBSEP p SUBSEP 128] + 0 }
		function verdict(ok) { return ok ? "met" : "**not met**" }
		END {
			w = get(r, "walrus", "a"); j = get(r, "jetstream-always", "a")
			printf "| target | measured | |\n|---|---|---|\n"
			printf "| one in flight >= 3x JetStream (fsync always) | %s vs %s msgs/s = %.2fx | %s |\n", commas(w), commas(j), (j > 0 ? w / j : 0), verdict(j > 0 && w >= 3 * j)
			wl = get(r, "walrus-leader-route", "a")
			printf "| the same, writes routed to the leader (Go client) | %s vs %s msgs/s = %.2fx | %s |\n", commas(wl), commas(j), (j > 0 ? wl / j : 0), verdict(j > 0 && wl >= 3 * j)
			b = get(r, "walrus", "b")
			printf "| batched >= 300,000 msgs/s | %s msgs/s | %s |\n", commas(b), verdict(b >= 300000)
			c1 = get(r, "walrus", "c"); c16 = get(r, "walrus", "c16")
			printf "| read by offset batches >= 500,000 msgs/s | %s (1 reader), %s (16 readers) msgs/s | %s |\n", commas(c1), commas(c16), verdict(c1 >= 500000 || c16 >= 500000)
			ha = get(q, "walrus", "half-a"); hb = get(q, "walrus", "half-b")
			printf "| p99 <= 5 ms at half max throughput | p99 %.2f ms (1 in flight at %s msgs/s), %.2f ms (batches at %s msgs/s) | %s |\n", ha, commas(get(r, "walrus", "half-a")), hb, commas(get(r, "walrus", "half-b")), verdict(ha <= 5 && hb <= 5)
			ha = get(q, "walrus-leader-route", "half-a"); hb = get(q, "walrus-leader-route", "half-b")
			printf "| the same, writes routed to the leader (Go client) | p99 %.2f ms (1 in flight at %s msgs/s), %.2f ms (batches at %s msgs/s) | %s |\n", ha, commas(get(r, "walrus-leader-route", "half-a")), hb, commas(get(r, "walrus-leader-route", "half-b")), verdict(ha <= 5 && hb <= 5)
			fa = get(q, "disk-alone", "half-a"); fb = get(q, "disk-alone", "half-b"); fal = get(q, "disk-alone-leader-route", "half-a"); fbl = get(q, "disk-alone-leader-route", "half-b")
			printf "| (the disk alone at those rates: 3 files group-committing, a write done on 2; fsyncrate --msgs) | p99 %.2f / %.2f ms (1 in flight), %.2f / %.2f ms (batches) | (%s) |\n", fa, fal, fb, fbl, (fa <= 5 && fb <= 5 && fal <= 5 && fbl <= 5) ? "under 5 ms" : "over 5 ms"
		}' "$RESULTS"
}

# ---- main -------------------------------------------------------------

install_tools
echo "walrus compare: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ { print $2 }') GiB RAM, $(uname -sr), $(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')"
echo "versions: $(go version | cut -d' ' -f3-4), $("$NATS_SERVER" --version), nats CLI $("$NATS" --version 2>&1), $(redis-server --version | cut -d' ' -f1-3)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other engineers share these 2 cores)"
log "disk and kernel baselines"
fsync_baseline 3s | tee "$WORK/logs/fsync-start.txt"
fsync3_baseline 3s | tee "$WORK/logs/fsync3-start.txt"
kernel_baseline | tee "$WORK/logs/kernel-start.txt"

for size in $SIZES; do
	log "Walrus --fsync always, $size B"
	walrus_start always
	walrus_suite 1 walrus "$size"
	stop_all
	log "JetStream sync_interval: always, $size B"
	nats_start always
	nats_suite 1 jetstream-always "$size"
	stop_all
	log "Redis appendfsync always, $size B"
	redis_start always
	redis_suite 1 redis-always "$size"
	stop_all

	log "Walrus --fsync interval:1s, $size B"
	walrus_start interval:1s
	walrus_suite 2 walrus-interval-1s "$size"
	stop_all
	log "JetStream default sync, $size B"
	nats_start default
	nats_suite 2 jetstream-default "$size"
	stop_all
	log "Redis appendfsync everysec, $size B"
	redis_start everysec
	redis_suite 2 redis-everysec "$size"
	stop_all
done

log "disk and kernel baselines again"
fsync_baseline 3s | tee "$WORK/logs/fsync-end.txt"
fsync3_baseline 3s | tee "$WORK/logs/fsync3-end.txt"
kernel_baseline | tee "$WORK/logs/kernel-end.txt"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# Walrus's default is fsync always: table 2 compares the same measurements
awk -F'\t' -v OFS='\t' '$1 == 1 && $2 == "walrus" { $1 = 2; print }' "$RESULTS" >>"$RESULTS"
table 1 "Table 1: every acknowledged write fsynced (Walrus --fsync always, JetStream sync_interval: always, Redis appendfsync always)" \
	walrus walrus-leader-route jetstream-always redis-always
table 2 "Table 2: peers at their default durability (JetStream default sync_interval, Redis appendfsync everysec; Walrus as in table 1, and with --fsync interval:1s for reference)" \
	walrus walrus-interval-1s jetstream-default redis-everysec
echo
echo "Walrus open loop at half its closed-loop maximum (latency from the scheduled send):"
awk -F'\t' 'function commas(n,   s, out) { s = sprintf("%d", n + 0.5); out = ""; while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }; return s out } $1 == 1 && $2 ~ /^(walrus|disk-alone)(-leader-route)?$/ && $3 ~ /^half/ { printf "  %s%s%s %d B: %s msgs/s, p50 %s p99 %s p99.9 %s ms\n", ($2 ~ /^disk/ ? "the disk alone, " : ""), $3, ($2 ~ /leader/ ? ", routed to the leader" : ""), $4, commas($5), $6, $7, $8 }' "$RESULTS"
targets
echo
echo "machine freezes during each write run (bench/freezeprobe: a real-time sleeper waking over 3 ms late, i.e. nothing ran; R near 1: on the beat of a 100 ms clock):"
freezes() {
	local f
	for f in "$@"; do
		[ -s "$f" ] || continue
		printf '  %-32s %s\n' "$(basename "$f" .freezes)" "$(sed -E 's/^freezes: //; s/ \(a [^ ]* sleeper at [^)]*\)//' "$f")"
	done
}
freezes "$WORK"/logs/*-{a,al,b,bl,ha,hal,hb,hbl}-*.freezes
echo "and during each read run:"
freezes "$WORK"/logs/*-{c1,c16}-*.freezes
echo
echo "disk: $(grep '^fdatasync' "$WORK/logs/fsync-start.txt" | cut -d: -f2- | sed 's/^ //') (start)"
echo "      $(grep '^fdatasync' "$WORK/logs/fsync-end.txt" | cut -d: -f2- | sed 's/^ //') (end)"
echo "disk, 3 files at once: $(grep '^fdatasync' "$WORK/logs/fsync3-start.txt" | cut -d: -f2- | sed 's/^ //') (start)"
echo "                       $(grep '^fdatasync' "$WORK/logs/fsync3-end.txt" | cut -d: -f2- | sed 's/^ //') (end)"
echo "kernel: $(cut -d: -f2- "$WORK/logs/kernel-start.txt" | sed 's/^ //') (start)"
echo "        $(cut -d: -f2- "$WORK/logs/kernel-end.txt" | sed 's/^ //') (end)"
echo "raw outputs: $WORK/logs"
