// Package ops is what every Herald service shows its operators over HTTP: /healthz (the process is up),
// /readyz (its dependencies answer) and /metrics (Prometheus).
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a metrics registry with the Go runtime and process collectors. Each service has
// its own registry rather than the global one, so that several services can share a process.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Register adds the ops endpoints to mux. ready reports why the service cannot take work, or nil.
func Register(mux *http.ServeMux, reg *prometheus.Registry, ready func(context.Context) error) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			write(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		write(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
}

// Handler is a mux with only the ops endpoints, for services whose API is not HTTP.
func Handler(reg *prometheus.Registry, ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	Register(mux, reg, ready)
	return mux
}

func write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Ready is the readiness check of a service whose work needs NATS and, when ping is not nil, its
// database: it names the first one that does not answer.
func Ready(nc *nats.Conn, ping func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected to NATS")
		}
		if ping == nil {
			return nil
		}
		if err := ping(ctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
		return nil
	}
}
