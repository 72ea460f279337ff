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
