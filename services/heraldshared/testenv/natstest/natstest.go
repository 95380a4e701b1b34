// Package natstest provides NATS servers with JetStream for tests: an embedded one per test, and the
// machine's own server at 127.0.0.1:4222.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/services/heraldshared/testenv"
)

// LocalURL is the development machines' NATS server; HERALD_TEST_NATS_URL overrides it.
const LocalURL = "nats://127.0.0.1:4222"

// Embedded starts an in-process NATS server with JetStream on a free port, storing under a temporary
// directory, and returns its URL. It is shut down when the test ends.
func Embedded(t testing.TB) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("embedded nats: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded nats did not start")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// Local returns the URL of the machine's NATS server, failing under CI and skipping elsewhere when it
// cannot be reached.
func Local(t testing.TB) string {
	t.Helper()
	u := os.Getenv("HERALD_TEST_NATS_URL")
	if u == "" {
		u = LocalURL
	}
	nc, err := nats.Connect(u, nats.Timeout(3*time.Second))
	if err != nil {
		testenv.Unavailable(t, "NATS at "+u, err)
		return ""
	}
	defer nc.Close()
	return u
}

// Cluster starts n embedded NATS servers with JetStream routed into one cluster, and returns their client
// URLs once JetStream has a meta leader (streams with several replicas can be created). They are shut
// down when the test ends.
func Cluster(t testing.TB, n int) []string {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	routes := make([]*url.URL, n)
	for i, p := range ports {
		routes[i] = &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)}
	}
	urls := make([]string, n)
	servers := make([]*server.Server, n)
	for i := range n {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "herald-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
			NoLog:      true,
			NoSigs:     true,
		})
		if err != nil {
			t.Fatalf("embedded nats cluster: %v", err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		servers[i] = s
	}
	for i, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("embedded nats cluster did not start")
		}
		urls[i] = s.ClientURL()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader, ready := false, true
		for _, s := range servers {
			leader = leader || s.JetStreamIsLeader()
			ready = ready && s.NumRoutes() >= n-1 && s.JetStreamIsCurrent()
		}
		if leader && ready {
			return urls
		}
		if time.Now().After(deadline) {
			t.Fatal("embedded nats cluster: no JetStream meta leader in 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort asks the kernel for a port that is free now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
