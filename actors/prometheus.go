package actors

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// nodeMetrics are the node's Prometheus series. Each node has its own
// registry (tests run several nodes in one process); /metrics serves it.
type nodeMetrics struct {
	reg *prometheus.Registry

	requests    *prometheus.CounterVec   // by command and result
	latency     *prometheus.HistogramVec // client request latency at the entry node, by command
	putEntries  prometheus.Counter       // entries acknowledged by segments this node leads
	putBatch    prometheus.Histogram     // entries per write request at the entry node
	getEntries  prometheus.Counter       // entries handed out by the shared cursor (raft leader)
	readEntries prometheus.Counter       // entries served to READ/GROUPREAD at the entry node
	walAppend   prometheus.Histogram     // local append: queued -> durable under the fsync policy
	replicaAck  prometheus.Histogram     // follower batch: sent -> durable ack received
	rollovers   prometheus.Counter
	recoveries  prometheus.Counter
	walErrors   prometheus.Counter
	connections prometheus.Gauge

	segmentsDeleted prometheus.Counter

	mu  sync.Mutex        // guards lag
	lag map[string]uint64 // replication lag per topic this node leads (entries)
}

var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newNodeMetrics() *nodeMetrics {
	m := &nodeMetrics{reg: prometheus.NewRegistry(), lag: map[string]uint64{}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walrus_requests_total",
		Help: "Client requests answered by this node (entry node), by command and result (ok, empty, error)."}, []string{"command", "result"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "walrus_request_seconds",
		Help: "Client request latency at the entry node, from frame read to reply queued, by command.", Buckets: latencyBuckets}, []string{"command"})
	m.putEntries = prometheus.NewCounter(prometheus.CounterOpts{Name: "walrus_put_entries_total",
		Help: "Entries acknowledged (held by a quorum) in segments this node leads."})
	m.putBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "walrus_put_batch_entries",
		Help: "Entries per write request (PUT is 1, MPUT its count).", Buckets: prometheus.ExponentialBuckets(1, 4, 8)})
	m.getEntries = prometheus.NewCounter(prometheus.CounterOpts{Name: "walrus_get_entries_total",
		Help: "Entries handed out by the shared cursor (counted on the raft leader, which owns it)."})
	m.readEntries = prometheus.NewCounter(prometheus.CounterOpts{Name: "walrus_read_entries_total",
		Help: "Entries returned to READ and GROUPREAD by this entry node."})
	m.walAppend = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "walrus_wal_append_seconds",
		Help: "Local WAL appends from queueing to durable under the fsync policy (includes the group commit wait and the fsync).", Buckets: latencyBuckets})
	m.replicaAck = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "walrus_replication_round_seconds",
		Help: "Replication batches from send to the follower's durable acknowledgement.", Buckets: latencyBuckets})
	m.rollovers = prometheus.NewCounter(prometheus.CounterOpts{Name: "walrus_rollovers_total", Help: "Seal proposals for full segments this node leads."})
	m.recoveries = prometheus.NewCounter(prometheus.CounterOpts{Name: "walrus_recoveries_total", Help: "Segment recoveries (failover seals) this node coordinated."})
	m.walErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "walrus_wal_errors_total", Help: "WAL appends that failed (disk full, I/O error)."})
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{Name: "walrus_client_connections", Help: "Open client connections."})
	m.segmentsDeleted = prometheus.NewCounter(prometheus.CounterOpts{Name: "walrus_segments_deleted_total", Help: "Local segment files deleted by retention."})
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.putEntries, m.putBatch, m.getEntries, m.readEntries,
		m.walAppend, m.replicaAck, m.rollovers, m.recoveries, m.walErrors, m.connections, m.segmentsDeleted,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// observe records one answered client request.
func (m *nodeMetrics) observe(cmd, result string, took time.Duration) {
	m.requests.WithLabelValues(cmd, result).Inc()
	m.latency.WithLabelValues(cmd).Observe(took.Seconds())
}

func (m *nodeMetrics) setLag(topic string, lag uint64) {
	m.mu.Lock()
	m.lag[topic] = lag
	m.mu.Unlock()
}

func (m *nodeMetrics) dropLag(topic string) {
	m.mu.Lock()
	delete(m.lag, topic)
	m.mu.Unlock()
}

// nodeCollector reads the node's state at scrape time: raft, segments on
// disk, replication lag, WAL totals.
type nodeCollector struct{ n *Node }

var (
	descRaftState   = prometheus.NewDesc("walrus_raft_state", "1 for the raft state this node is in.", []string{"state"}, nil)
	descRaftTerm    = prometheus.NewDesc("walrus_raft_term", "Current raft term.", nil, nil)
	descRaftCommit  = prometheus.NewDesc("walrus_raft_commit_index", "Raft commit index.", nil, nil)
	descRaftApplied = prometheus.NewDesc("walrus_raft_applied_index", "Index of the last metadata command applied here.", nil, nil)
	descSegments    = prometheus.NewDesc("walrus_segments", "Segment files on this node's disk, by state.", []string{"state"}, nil)
	descSegBytes    = prometheus.NewDesc("walrus_segment_bytes", "Payload bytes in this node's segment files.", nil, nil)
	descLag         = prometheus.NewDesc("walrus_replication_lag_entries", "Entries the slowest follower lacks, per topic whose active segment this node leads.", []string{"topic"}, nil)
	descUnder       = prometheus.NewDesc("walrus_under_replicated_segments", "Sealed segments whose replica set needs repair: a replica on a removed node, or fewer replicas than the topic's RF allows now.", nil, nil)
	descWALBatches  = prometheus.NewDesc("walrus_wal_batches_total", "Group-commit batches written.", nil, nil)
	descWALSyncs    = prometheus.NewDesc("walrus_wal_syncs_total", "fdatasync calls issued by the WAL.", nil, nil)
	descWALBytes    = prometheus.NewDesc("walrus_wal_bytes_written_total", "Record bytes written by WAL appends.", nil, nil)
	descLease       = prometheus.NewDesc("walrus_write_lease", "1 while this node holds its write lease.", nil, nil)
)

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	state := n.host.stateName()
	for _, s := range []string{"Leader", "Follower", "Candidate", "Learner", "Shutdown"} {
		v := 0.0
		if s == state {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(descRaftTerm, prometheus.GaugeValue, float64(n.host.r.CurrentTerm()))
	ch <- prometheus.MustNewConstMetric(descRaftCommit, prometheus.GaugeValue, float64(n.host.r.CommitIndex()))
	ch <- prometheus.MustNewConstMetric(descRaftApplied, prometheus.GaugeValue, float64(n.host.appliedIndex()))
	var open, sealed, bytes float64
	for _, s := range n.wal.Segments() {
		if s.Sealed {
			sealed++
		} else {
			open++
		}
		bytes += float64(s.Bytes)
	}
	ch <- prometheus.MustNewConstMetric(descSegments, prometheus.GaugeValue, open, "open")
	ch <- prometheus.MustNewConstMetric(descSegments, prometheus.GaugeValue, sealed, "sealed")
	ch <- prometheus.MustNewConstMetric(descSegBytes, prometheus.GaugeValue, bytes)
	n.metrics.mu.Lock()
	for topic, lag := range n.metrics.lag {
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(lag), topic)
	}
	n.metrics.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descUnder, prometheus.GaugeValue, float64(len(n.host.State().UnderReplicated())))
	st := n.wal.Stats()
	ch <- prometheus.MustNewConstMetric(descWALBatches, prometheus.CounterValue, float64(st.Batches))
	ch <- prometheus.MustNewConstMetric(descWALSyncs, prometheus.CounterValue, float64(st.Syncs))
	ch <- prometheus.MustNewConstMetric(descWALBytes, prometheus.CounterValue, float64(st.BytesWritten))
	lease := 0.0
	if n.lease.valid(n.now()) {
		lease = 1
	}
	ch <- prometheus.MustNewConstMetric(descLease, prometheus.GaugeValue, lease)
}

// metricsHandler serves the node's registry in the Prometheus text format.
func (n *Node) metricsHandler() http.Handler {
	n.metrics.reg.MustRegister(nodeCollector{n})
	return promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{})
}

// HTTPAddr is the address the metrics/health port listens on ("" if off).
func (n *Node) HTTPAddr() string {
	if n.http == nil {
		return ""
	}
	return n.http.ln.Addr().String()
}
