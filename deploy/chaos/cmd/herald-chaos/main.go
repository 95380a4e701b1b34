// Command herald-chaos runs Herald's crash run (scripts/crashtest.sh) or cluster run
// (scripts/clustertest.sh): the services as processes on PostgreSQL and a NATS of the run's own, requests
// pushed and approved through the public API and pages while processes are killed. It prints what it
// counted and exits 1 when a post was lost or duplicated or an approver was mailed twice about one post.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/heraldhq/herald/deploy/chaos"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "herald-chaos:", err)
		os.Exit(1)
	}
}

func run() error {
	cluster := flag.Bool("cluster", false, "the cluster run: 3 NATS nodes, R3 streams, 2 replicas of each service, rolling restart")
	requests := flag.Int("requests", 10000, "post requests to push")
	rateFlag := flag.Float64("rate", 100, "requests a second (0: as fast as the gateway accepts)")
	concurrency := flag.Int("concurrency", 16, "flows posting and browsers approving at once")
	duration := flag.Duration("duration", 15*time.Minute, "bound on the whole run; it stops by itself")
	kills := flag.Int("kills", 30, "crash run: random kills at most")
	every := flag.Duration("kill-every", 8*time.Second, "average time between kills")
	approvers := flag.Int("approvers", 2, "approvers of the department (each is mailed about every post)")
	pg := flag.String("pg", defaultPostgres(), "PostgreSQL URL (the run uses fresh schemas and drops them)")
	keep := flag.Bool("keep", false, "keep the run's directory (logs, NATS stores)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "herald-chaos-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "herald-chaos: keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "herald-chaos: building the services and nats-server")
	bins, err := chaos.Build(ctx, root, filepath.Join(dir, "bin"))
	if err != nil {
		return err
	}
	cfg := chaos.Config{
		Requests: *requests, Rate: *rateFlag, Concurrency: *concurrency, Duration: *duration,
		Kills: *kills, KillEvery: *every, Cluster: *cluster, NATSNodes: 1, Replicas: 1, Approvers: *approvers,
		PostgresURL: *pg, Bins: bins, Dir: dir, Progress: os.Stdout,
	}
	if *cluster {
		cfg.NATSNodes, cfg.Replicas = 3, 2
	}
	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if why := rep.Failed(); why != "" {
		return fmt.Errorf("%s", why)
	}
	return nil
}

func defaultPostgres() string {
	if u := os.Getenv("HERALD_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// repoRoot finds the workspace root (go.work) from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above the working directory: run from the repository")
		}
		dir = parent
	}
}
