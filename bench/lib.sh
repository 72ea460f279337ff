# Shared helpers of the bench scripts: sourced, not run. Expects ROOT (the
# repository) and WORK (a scratch directory on the disk under test) set.
# Every server started here is recorded in $WORK/pids and stopped by
# finish (stop_all, then delete the servers' data), which the scripts
# call from an EXIT trap.

# Loopback ports, away from the documented dev ports (9091.., 6001..).
WALRUS_CLIENT_BASE=${WALRUS_CLIENT_BASE:-19090} # node i: +i
WALRUS_RAFT_BASE=${WALRUS_RAFT_BASE:-19100}
WALRUS_HTTP_BASE=${WALRUS_HTTP_BASE:-19110} # node i's /metrics: +i
NATS_CLIENT_BASE=${NATS_CLIENT_BASE:-14220}
NATS_ROUTE_BASE=${NATS_ROUTE_BASE:-16220}
REDIS_PORT=${REDIS_PORT:-16379}

log() { printf '\n### %s\n' "$*" >&2; }

# run CMD...: print the command as "$ CMD" and run it (stdout and stderr kept).
run() {
	printf '$ %s\n' "$*"
	"$@"
}

# json_field FILE KEY: the first number after "KEY": in a JSON report
# (walrus-bench --json-file); empty if there is none.
json_field() {
	{ grep -o "\"$2\":[0-9.e+-]*" "$1" 2>/dev/null || true; } | head -1 | cut -d: -f2
}

# walrus_bench NAME ARGS...: run $WORK/bin/walrus-bench against the cluster,
# show its report and keep it in $WORK/logs/NAME.txt, its JSON in NAME.json.
walrus_bench() {
	local name=$1
	shift
	mkdir -p "$WORK/logs"
	rm -f "$WORK/logs/$name.json"
	# a run with errors exits 1: its report says so; carry on
	{ with_freezes "$name" run "$WORK/bin/walrus-bench" --addr "$(walrus_addrs)" --quiet --json-file "$WORK/logs/$name.json" "$@" || true; } |
		tee "$WORK/logs/$name.txt"
}

# with_freezes NAME CMD...: with FREEZES=1 (bench/compare.sh, which
# reports it), run CMD with bench/freezeprobe beside it for as long as it
# runs (how often the whole machine stopped meanwhile; the probe costs ~3 %
# of one CPU); the probe's line goes to $WORK/logs/NAME.freezes. Without,
# just CMD. CMD's exit status is kept.
with_freezes() {
	local name=$1 probe rc=0
	shift
	if [ "${FREEZES:-}" != 1 ]; then
		"$@"
		return
	fi
	mkdir -p "$WORK/logs"
	"$WORK/bin/freezeprobe" --duration 1h >"$WORK/logs/$name.freezes" 2>&1 &
	probe=$!
	"$@" || rc=$?
	kill -TERM "$probe" 2>/dev/null || true
	wait "$probe" 2>/dev/null || true
	return "$rc"
}

walrus_addrs() {
	echo "127.0.0.1:$((WALRUS_CLIENT_BASE + 1)),127.0.0.1:$((WALRUS_CLIENT_BASE + 2)),127.0.0.1:$((WALRUS_CLIENT_BASE + 3))"
}

# build_walrus: the node, the load generator and the helpers into $WORK/bin.
build_walrus() {
	mkdir -p "$WORK/bin"
	(cd "$ROOT" && go build -o "$WORK/bin/walrus" ./cmd/walrus &&
		go build -o "$WORK/bin/walrus-bench" ./cmd/walrus-bench &&
		go build -o "$WORK/bin/fsyncrate" ./bench/fsyncrate &&
		go build -o "$WORK/bin/freezeprobe" ./bench/freezeprobe &&
		go build -o "$WORK/bin/redisread" ./bench/redisread)
}

# build_at REF PKG OUT: build Go package PKG (./cmd/walrus, ...) as it is
# at commit REF into the binary OUT (from a git archive under $WORK).
build_at() {
	local src="$WORK/src-$(cd "$ROOT" && git rev-parse --short "$1")"
	if [ ! -d "$src" ]; then
		mkdir -p "$src"
		(cd "$ROOT" && git archive "$1" | tar -x -C "$src")
	fi
	(cd "$src" && go build -o "$3" "$2")
}

# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# fsync_baseline: the disk's append+fdatasync rate in $WORK.
fsync_baseline() {
	run "$WORK/bin/fsyncrate" --dir "$WORK" --block 4096 --duration "${1:-3s}"
}

# fsync3_baseline: the same with three files synced at once, each into
# zeros written ahead, as three nodes of a cluster on this one disk sync
# their copies of a segment (the disk's own tail at that load; what the
# host's pauses add when the CPUs are busy too is bench/pauses.sh's).
fsync3_baseline() {
	run "$WORK/bin/fsyncrate" --dir "$WORK" --block 4096 --writers 3 --zero-ahead --duration "${1:-3s}"
}

# disk_alone RATE BATCH SIZE DURATION: the disk alone under a replicated
# write at RATE msgs/s in requests of BATCH messages of SIZE bytes (and
# the WAL's 20-byte record header each): bench/fsyncrate --msgs with three
# files group-committing, a request done once two of them synced it (the
# segment leader and its eager follower; the third trails as
# --trailing-replica-wait 5ms has it), latency from its slot as
# walrus-bench's open loop counts it. Prints the command (stderr) and
# fsyncrate's line.
disk_alone() {
	local args
	args=(--dir "$WORK" --writers 3 --ack 2 --msgs "$(awk -v r="$1" -v b="$2" 'BEGIN { print r / b }')"
		--entry $(($2 * ($3 + 20))) --duration "$4")
	echo "\$ fsyncrate ${args[*]}" >&2
	"$WORK/bin/fsyncrate" "${args[@]}"
}

# disk_alone_ms FILE: "p50 p99 p99.9" (ms) from a disk_alone line.
disk_alone_ms() {
	sed -nE 's/.*latency from the slot p50 ([0-9.]+) p99 ([0-9.]+) p99\.9 ([0-9.]+) ms.*/\1 \2 \3/p' "$1"
}

# kernel_baseline: what a loopback round trip costs on this machine (a
# replication round without the WAL, 1 entry, 1 in flight: two socket
# sends and two wake-ups), the kernel paths a one-in-flight write is made
# of; with whether the kernel isolates page tables (every system call
# and interrupt dearer).
kernel_baseline() {
	local out
	# built here, not in build_walrus: only the comparison takes it
	[ -x "$WORK/bin/transport.test" ] || (cd "$ROOT" && go test -c -o "$WORK/bin/transport.test" ./transport) || return 1
	out=$("$WORK/bin/transport.test" -test.run '^$' -test.bench '^BenchmarkReplicationRound$/^entries=1$/^inflight=1$' -test.benchtime 3000x 2>&1 |
		awk '/^BenchmarkReplicationRound/ { for (i = 1; i < NF; i++) if ($(i + 1) == "ns/op") printf "%.1f", $i / 1000 }')
	echo "kernel baseline: loopback round trip ${out:-?} µs (transport ReplicationRound, 1 entry, 1 in flight); page-table isolation: $(cat /sys/devices/system/cpu/vulnerabilities/meltdown 2>/dev/null || echo unknown)"
}

# node_metrics I: node I's /metrics (nothing if it does not answer)
node_metrics() {
	curl -s "http://127.0.0.1:$((WALRUS_HTTP_BASE + $1))/metrics" || true
}

# walrus_start FSYNC: a 3-node cluster as `walrus dev` starts it (node 1
# bootstraps, 2 and 3 join it), with a fresh data dir, on loopback ports.
# WALRUS_NODE_FLAGS: more flags for every node (split on spaces);
# WALRUS_NODE_ENV: VAR=value settings for the nodes' environment (e.g.
# GOMAXPROCS=1).
walrus_start() {
	local fsync=$1 dir="$WORK/walrus-$1" i
	ports_free walrus $((WALRUS_CLIENT_BASE + 1)) $((WALRUS_CLIENT_BASE + 2)) $((WALRUS_CLIENT_BASE + 3)) \
		$((WALRUS_RAFT_BASE + 1)) $((WALRUS_RAFT_BASE + 2)) $((WALRUS_RAFT_BASE + 3)) \
		$((WALRUS_HTTP_BASE + 1)) $((WALRUS_HTTP_BASE + 2)) $((WALRUS_HTTP_BASE + 3)) || return 1
	rm -rf "$dir" && mkdir -p "$dir"
	for i in 1 2 3; do
		local join=()
		[ "$i" -gt 1 ] && join=(--join "127.0.0.1:$((WALRUS_RAFT_BASE + 1))")
		env ${WALRUS_NODE_ENV:-} "$WORK/bin/walrus" --node-id "$i" --data-dir "$dir" --fsync "$fsync" \
			--client-port $((WALRUS_CLIENT_BASE + i)) --raft-port $((WALRUS_RAFT_BASE + i)) --http-port $((WALRUS_HTTP_BASE + i)) \
			--log-file "$dir/node_$i.log" ${WALRUS_NODE_FLAGS:-} "${join[@]}" &
		echo $! >>"$WORK/pids"
		[ "$i" -eq 1 ] && sleep 0.5
	done
	# ready once a topic on all three takes writes through every node
	local t
	for t in $(seq 100); do
		if "$WORK/bin/walrus-bench" --addr "$(walrus_addrs)" --register --topic ready --producers 3 --messages 3 \
			--duration 0 --quiet >/dev/null 2>&1; then
			started_alive walrus "$dir" || return 1
			return 0
		fi
		sleep 0.2
	done
	echo "walrus cluster did not become ready; logs in $dir" >&2
	return 1
}

# nats_start SYNC: a 3-node JetStream cluster; SYNC is "always" (fsync
# every write) or "default" (the server's default sync_interval).
nats_start() {
	local sync=$1 dir="$WORK/nats-$1" i j
	ports_free nats $((NATS_CLIENT_BASE + 1)) $((NATS_CLIENT_BASE + 2)) $((NATS_CLIENT_BASE + 3)) \
		$((NATS_ROUTE_BASE + 1)) $((NATS_ROUTE_BASE + 2)) $((NATS_ROUTE_BASE + 3)) || return 1
	rm -rf "$dir" && mkdir -p "$dir"
	for i in 1 2 3; do
		{
			echo "server_name: n$i"
			echo "listen: 127.0.0.1:$((NATS_CLIENT_BASE + i))"
			echo "jetstream {"
			echo "  store_dir: \"$dir/n$i\""
			[ "$sync" = always ] && echo "  sync_interval: always"
			echo "}"
			echo "cluster {"
			echo "  name: bench"
			echo "  listen: 127.0.0.1:$((NATS_ROUTE_BASE + i))"
			echo "  routes: ["
			for j in 1 2 3; do
				[ "$j" -ne "$i" ] && echo "    nats-route://127.0.0.1:$((NATS_ROUTE_BASE + j))"
			done
			echo "  ]"
			echo "}"
		} >"$dir/n$i.conf"
		"$NATS_SERVER" -c "$dir/n$i.conf" -l "$dir/n$i.log" &
		echo $! >>"$WORK/pids"
	done
	# ready once an R3 stream can be created (meta leader elected, all
	# three servers in the cluster)
	local t
	for t in $(seq 150); do
		if "$NATS" --server "$(nats_urls)" stream add ready --subjects ready --replicas 3 --storage file \
			--defaults >/dev/null 2>&1; then
			"$NATS" --server "$(nats_urls)" stream rm ready -f >/dev/null 2>&1
			started_alive nats "$dir" || return 1
			return 0
		fi
		sleep 0.2
	done
	echo "nats cluster did not become ready; logs in $dir" >&2
	return 1
}

nats_urls() {
	echo "nats://127.0.0.1:$((NATS_CLIENT_BASE + 1)),nats://127.0.0.1:$((NATS_CLIENT_BASE + 2)),nats://127.0.0.1:$((NATS_CLIENT_BASE + 3))"
}

# redis_start APPENDFSYNC: one Redis with the append-only file on, syncing
# "always" or "everysec" (its default once appendonly is on).
redis_start() {
	local fsync=$1 dir="$WORK/redis-$1"
	ports_free redis "$REDIS_PORT" || return 1
	rm -rf "$dir" && mkdir -p "$dir"
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync "$fsync" \
		--save '' --daemonize no --logfile "$dir/redis.log" &
	echo $! >>"$WORK/pids"
	local t
	for t in $(seq 100); do
		if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
			started_alive redis "$dir" || return 1
			return 0
		fi
		sleep 0.1
	done
	echo "redis did not start; log in $dir" >&2
	return 1
}

# ports_free WHAT PORT...: fail, naming the port, if anything listens on
# one of the loopback ports a server is about to take. A server left
# running by an earlier script (killed before its EXIT trap ran, or one of
# another engineer's) would otherwise answer in place of the new one,
# whose nodes exit on the bind error unnoticed: the run would measure an
# old build, with old data, at whatever settings it had.
ports_free() {
	local what=$1 p
	shift
	for p in "$@"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "bench: port $p (for $what) is taken by another process; stop it or pick other ports (see bench/lib.sh)" >&2
			return 1
		fi
	done
}

# started_alive WHAT DIR: fail unless every server this script started is
# still running (one that exited, say on a bind error, has its log in DIR).
started_alive() {
	local p
	for p in $(cat "$WORK/pids"); do
		if ! kill -0 "$p" 2>/dev/null; then
			echo "bench: a $what server this script started (pid $p) has exited; logs in $2" >&2
			return 1
		fi
	done
}

# finish: the scripts' EXIT trap. Stops the servers, then deletes what
# they stored unless KEEP_DATA=1 (a comparison leaves gigabytes of segment
# files; old runs once filled this shared disk). Logs and reports stay.
finish() {
	stop_all
	[ "${KEEP_DATA:-0}" = 1 ] && return 0
	rm -rf "$WORK"/walrus-*/node_*/ "$WORK"/nats-*/n[0-9]/ "$WORK"/redis-*/appendonlydir/ "$WORK"/src-a/
}

# stop_all: SIGTERM every server this script started (by pid), then wait.
stop_all() {
	[ -f "$WORK/pids" ] || return 0
	local p
	for p in $(cat "$WORK/pids"); do
		kill "$p" 2>/dev/null || true
	done
	for p in $(cat "$WORK/pids"); do
		for _ in $(seq 100); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null || true
	done
	: >"$WORK/pids"
}
