# Walrus for Go: common tasks. Each recipe wraps a plain command, so the
# README's two commands work without just (npm install -g rust-just).

# start a local 3-node cluster (client ports 9091-9093, raft 6001-6003, http 8081-8083)
dev:
    go run ./cmd/walrus dev

# run the tests (the README's test command)
test:
    go test ./...

# what CI runs: gofmt, vet, tests, race detector, short fuzz passes, simulation batch
ci:
    ./.ci/run

# storage-engine benchmarks with the disk's own limits measured in the same run
bench-wal:
    go test -run '^$' -bench . -timeout 1800s ./wal

# node hot-path benchmarks (in-process 3-node cluster, fsync always)
bench-cluster:
    go test -run '^$' -bench 'Cluster|Propose' -benchtime 3s ./actors

# node and cluster throughput/latency on a local 3-node cluster of real processes
bench-node:
    bench/node.sh

# Walrus vs NATS JetStream and Redis, installing them if missing
bench-compare:
    bench/compare.sh

# MPUT tail at half rate, with and without rollovers, and the stalls in it
bench-halfrate:
    bench/halfrate-tail.sh

# when the host pauses the machine: the freeze probe beside busy CPUs, fdatasync streams and Redis
bench-pauses:
    bench/pauses.sh

# writes through any node vs. to the segment leader (--route), alternated
bench-route:
    bench/route.sh

# CPU, system calls and context switches per acknowledged PUT, per process
bench-percall *REF:
    bench/percall.sh {{REF}}

# A/B of the working tree's node against REF (default main), real processes, alternated
bench-ab *REF:
    bench/ab.sh {{REF}}

# A/B of two walrus-bench builds against one cluster (REF: the base, default main)
bench-ab-loadgen *REF:
    bench/ab-loadgen.sh {{REF}}

# CPU profile of an in-process 3-node cluster under 16 MPUT producers
bench-profile:
    bench/profile.sh

# end-to-end tests: real node processes on loopback; node logs print on failure
# (one scenario: just e2e -run TestBadInput -v)
e2e *args:
    go test -p 1 -count=1 ./e2e/ {{args}}

# long simulation soak: many seeds of the CI batch's schedule (artifacts of failing seeds kept)
sim-soak seeds="5000" first="1000":
    go test -count=1 -timeout 0 -v ./testkit -run 'TestSimBatch$' -seeds {{seeds}} -first {{first}} -simartifacts /tmp/walrus-sim-soak

# replay one simulation seed with its trace
sim seed:
    go test -count=1 -v ./testkit -run 'TestSim$' -seed {{seed}} -simtrace

# static checks beyond go vet (staticcheck, fetched from the Go module proxy; not part of CI)
lint:
    go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
