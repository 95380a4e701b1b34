package stack_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/heraldhq/herald/deploy/stack"
	"github.com/heraldhq/herald/services/heraldshared/testenv/certtest"
)

// TestStackWithTLS turns on every TLS variable, with mutual TLS on both gRPC APIs: the stack starts (its
// demo seeding reaches the approval service the gateway's way), the gateway answers over HTTPS, and a
// plaintext client gets nowhere.
func TestStackWithTLS(t *testing.T) {
	c := certtest.New(t)
	environ := map[string]string{
		"HERALD_DATA_DIR": t.TempDir(), "HERALD_GATEWAY_ADDR": "127.0.0.1:0", "HERALD_APPROVAL_GRPC_ADDR": "127.0.0.1:0",
		"HERALD_PUBLISHER_GRPC_ADDR": "127.0.0.1:0", "HERALD_APPROVAL_HTTP_ADDR": "127.0.0.1:0", "HERALD_PUBLISHER_HTTP_ADDR": "127.0.0.1:0",
		"HERALD_LOCAL_SMTP_ADDR": "127.0.0.1:0", "HERALD_LOCAL_MAILBOX_ADDR": "127.0.0.1:0", "HERALD_LOCAL_SANDBOX_ADDR": "127.0.0.1:0", "HERALD_LOCAL_TEAMS_ADDR": "127.0.0.1:0",
		"HERALD_LOCAL_NATS_ADDR": "127.0.0.1:0", "HERALD_CONSUMER_PREFIX": "stack-tls-test",

		"HERALD_APPROVAL_TLS_CERT_FILE": c.ServerCertFile, "HERALD_APPROVAL_TLS_KEY_FILE": c.ServerKeyFile, "HERALD_APPROVAL_TLS_CLIENT_CA_FILE": c.CAFile,
		"HERALD_PUBLISHER_TLS_CERT_FILE": c.ServerCertFile, "HERALD_PUBLISHER_TLS_KEY_FILE": c.ServerKeyFile, "HERALD_PUBLISHER_TLS_CLIENT_CA_FILE": c.CAFile,
		"HERALD_GATEWAY_TLS_CERT_FILE": c.ServerCertFile, "HERALD_GATEWAY_TLS_KEY_FILE": c.ServerKeyFile,
		"HERALD_APPROVAL_CA_FILE": c.CAFile, "HERALD_GATEWAY_CLIENT_CERT_FILE": c.ClientCertFile, "HERALD_GATEWAY_CLIENT_KEY_FILE": c.ClientKeyFile,
	}
	cfg, err := stack.ParseConfig(environ)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start with TLS: %v", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	if st.Info.DemoAPIKey == "" {
		t.Error("no demo key: seeding over mutual TLS failed")
	}
	if !strings.HasPrefix(st.Info.GatewayURL, "https://") {
		t.Errorf("GatewayURL %q, want https", st.Info.GatewayURL)
	}

	pool := x509.NewCertPool()
	pool.AddCert(c.CA)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(st.Info.GatewayURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Errorf("GET /readyz over HTTPS: %s, TLS %v", resp.Status, resp.TLS != nil)
	}

	// Neither gRPC API speaks plaintext, not even health.
	for _, addr := range []string{st.Info.ApprovalAddr, st.Info.PublisherAddr} {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		conn.Close()
		if status.Code(err) != codes.Unavailable {
			t.Errorf("plaintext health check of %s: %v, want Unavailable", addr, err)
		}
	}
}
