package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// httpServer serves /metrics, /healthz and /readyz.
type httpServer struct {
	srv *http.Server
	ln  net.Listener
}

func startHTTP(n *Node) (*httpServer, error) {
	ln, err := n.cfg.Network.Listen(n.cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on http port: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		leader, _ := n.host.Leader()
		ready := leader != 0 && n.caughtUp.Load()
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": ready, "raft_leader": leader, "caught_up": n.caughtUp.Load()})
	})
	mux.Handle("/metrics", n.metricsHandler())
	s := &httpServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Warn("http server", "err", err)
		}
	}()
	return s, nil
}

func (s *httpServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// metricsHandler exposes the node's counters in Prometheus text format.
func (n *Node) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		m := n.metrics
		fmt.Fprintf(w, "# TYPE walrus_put_entries_total counter\nwalrus_put_entries_total %d\n", m.putEntries.Load())
		fmt.Fprintf(w, "# TYPE walrus_get_entries_total counter\nwalrus_get_entries_total %d\n", m.getEntries.Load())
		fmt.Fprintf(w, "# TYPE walrus_rollovers_total counter\nwalrus_rollovers_total %d\n", m.rollovers.Load())
		fmt.Fprintf(w, "# TYPE walrus_recoveries_total counter\nwalrus_recoveries_total %d\n", m.recoveries.Load())
		fmt.Fprintf(w, "# TYPE walrus_wal_errors_total counter\nwalrus_wal_errors_total %d\n", m.walErrors.Load())
		fmt.Fprintf(w, "# TYPE walrus_client_connections gauge\nwalrus_client_connections %d\n", m.connections.Load())
		leader := 0
		if n.host.IsLeader() {
			leader = 1
		}
		fmt.Fprintf(w, "# TYPE walrus_raft_leader gauge\nwalrus_raft_leader %d\n", leader)
	})
}
