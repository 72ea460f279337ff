# Walrus for Go: common tasks. Each recipe wraps a plain `go` command so the
# README's commands work without just.

# start a local 3-node cluster (client ports 9091-9093, raft ports 6001-6003)
dev:
    go run ./cmd/walrus dev

# run the tests (the README's test command)
test:
    go test ./...

# what CI runs
ci:
    ./.ci/run

# storage-engine benchmarks with the disk's own limits as the baseline
bench-wal:
    go test -run '^$' -bench . -benchtime 2s ./wal

# end-to-end tests: real node processes on loopback; node logs print on failure
# (one scenario: just e2e -run TestBadInput -v)
e2e *args:
    go test -p 1 -count=1 ./e2e/ {{args}}
