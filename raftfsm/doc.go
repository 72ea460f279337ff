// Package raftfsm is the cluster metadata state machine that hashicorp/raft
// replicates: nodes, topics, segments (leader, replicas, epoch, seal state)
// and committed cursor positions. It is pure: no I/O, no clock, no goroutines.
package raftfsm
