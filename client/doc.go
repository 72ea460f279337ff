// Package client is the Go client of Walrus: a pool of pipelined
// connections to the nodes of a cluster, speaking the client protocol of
// COMPAT.md and docs/protocol.md (including our additive commands).
//
// # Connections
//
// Dial takes seed addresses (client ports of any nodes). The client keeps up
// to PoolSize connections per node, dialled lazily. Every connection runs one
// writer and one reader goroutine; requests from any number of callers are
// written back to back without waiting for replies, and replies are matched
// to requests in order (the server answers strictly in order per
// connection). A Client is safe for concurrent use.
//
// Writes (Put, PutBatch) go straight to the node that leads the topic's
// active segment when smart routing is on (the default): the client asks
// LEADER once per topic, caches the answer for a few seconds and forgets it
// on NotLeaderForPartition or when that node cannot be reached. Any node
// accepts any request (nodes forward), so routing is only an optimisation.
//
// # Errors and retries
//
// An "ERR <msg>" reply is a *ServerError whose Msg is the server's text,
// byte for byte. IsNotLeader, IsUnknownTopic and IsOutcomeUnknown classify
// errors. A request is retried with capped, jittered exponential back-off
// (see RetryPolicy) when it is known not to have taken effect, or when
// repeating it is harmless:
//
//   - the request was never written to a connection (dial failure, a
//     connection that broke before our bytes went out): every request;
//   - a NotLeaderForPartition reply, or an "unavailable: ..." reply that
//     does not say "outcome unknown": every request except GET and GETW;
//   - the connection broke or the request timed out after the request was
//     written: only requests that are idempotent (REGISTER, READ,
//     GROUPREAD, COMMIT, LEADER, STATE, METRICS).
//
// A PUT or MPUT whose outcome is unknown (the connection dropped after the
// request was written, the request timed out, or the reply says "outcome
// unknown") is never repeated automatically: the entries may or may not
// have been appended, and a retry could append them twice. Callers that
// prefer duplicates to gaps can opt in with RetryUnknownWrites(true).
// GET and GETW consume the shared cursor: once written they are never
// retried, whatever happened.
//
// Cancelling a context abandons the call: a request not yet written is
// withdrawn; one already written still runs on the server and its late
// reply is discarded (a GET so abandoned may consume an entry nobody sees).
package client
