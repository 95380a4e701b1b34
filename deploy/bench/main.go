// Command bench measures Herald on one machine against baselines taken in the same run, since the
// machines are shared and noisy and only ratios travel: intake under load, the pipeline behind it,
// decision to post, storage at scale and footprint. scripts/bench.sh runs it; the README's
// "Performance" section shows its latest table.
//
//	go run ./deploy/bench [flags] [all|intake|pipeline|decide|storage|footprint]
//
// It prints a table and writes the numbers as JSON to -out.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the flags, after -quick changed the defaults that were not given explicitly.
type options struct {
	quick           bool
	intakeSeconds   time.Duration
	clients         []int
	burst           int
	burstClients    int
	drainTimeout    time.Duration
	decidePosts     int
	decideClients   int
	pgRows          int
	sqliteRows      int
	iterations      int
	pgURL           string
	footprintLoad   time.Duration
	cpuProfile      string
	out             string
	logOut          io.Writer
	skipStandalones bool
}

// report is the JSON written to -out: every section that ran, and the machine it ran on.
type report struct {
	Started    time.Time         `json:"started"`
	Command    string            `json:"command"`
	Quick      bool              `json:"quick"`
	GoVersion  string            `json:"go_version"`
	NumCPU     int               `json:"num_cpu"`
	GOMAXPROCS int               `json:"gomaxprocs"`
	Intake     *intakeResult     `json:"intake,omitempty"`
	Pipeline   *pipelineResult   `json:"pipeline,omitempty"`
	Decide     []decideResult    `json:"decide,omitempty"`
	Storage    []storageResult   `json:"storage,omitempty"`
	Footprint  *footprintResult  `json:"footprint,omitempty"`
	Skipped    map[string]string `json:"skipped,omitempty"`
	// Errors are the benchmarks that failed: the others still run and are reported.
	Errors  map[string]string  `json:"errors,omitempty"`
	Seconds map[string]float64 `json:"seconds"`
}

func run(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "a short run for a quick check (under a minute): fewer seconds, posts and rows")
	seconds := fs.Duration("seconds", 5*time.Second, "intake: how long each side runs at each concurrency level")
	clients := fs.String("clients", "1,16,64", "intake: concurrency levels, comma-separated")
	burst := fs.Int("n", 20000, "pipeline: requests in the burst")
	burstClients := fs.Int("burst-clients", 64, "pipeline: concurrent clients sending the burst")
	drain := fs.Duration("drain-timeout", 5*time.Minute, "pipeline: how long to wait for the burst to be stored and mailed")
	decidePosts := fs.Int("m", 1000, "decide: posts approved on each database")
	decideClients := fs.Int("decide-clients", 4, "decide: approvers clicking at the same time")
	pgRows := fs.Int("pg-rows", 1_000_000, "storage: posts generated in PostgreSQL")
	sqliteRows := fs.Int("sqlite-rows", 100_000, "storage: posts generated in SQLite")
	iterations := fs.Int("iterations", 200, "storage: ListPosts calls per query")
	pgURL := fs.String("pg", defaultPostgres(), `PostgreSQL server for decide and storage (a fresh schema, dropped after); "off" skips them`)
	footLoad := fs.Duration("footprint-load", 5*time.Second, "footprint: how long the load runs while RSS is sampled")
	noStandalone := fs.Bool("no-standalone", false, "footprint: skip building and running the three services as processes")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of each benchmark to PREFIX-<benchmark>.pprof (Herald runs in this process, so it is in the profile)")
	out := fs.String("out", filepath.Join("scripts", "bench", "results"), "directory for the JSON results")
	logFile := fs.String("log", "", "file for Herald's warnings and errors (default: standard error)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o := options{
		quick: *quick, intakeSeconds: *seconds, burst: *burst, burstClients: *burstClients, drainTimeout: *drain,
		decidePosts: *decidePosts, decideClients: *decideClients, pgRows: *pgRows, sqliteRows: *sqliteRows,
		iterations: *iterations, pgURL: *pgURL, footprintLoad: *footLoad, cpuProfile: *cpuProfile, out: *out,
		logOut: os.Stderr, skipStandalones: *noStandalone,
	}
	// -quick changes only the defaults: a flag given explicitly wins.
	if *quick {
		for name, apply := range map[string]func(){
			"seconds":        func() { o.intakeSeconds = time.Second },
			"n":              func() { o.burst = 1000 },
			"drain-timeout":  func() { o.drainTimeout = 30 * time.Second },
			"m":              func() { o.decidePosts = 50 },
			"pg-rows":        func() { o.pgRows = 50_000 },
			"sqlite-rows":    func() { o.sqliteRows = 10_000 },
			"iterations":     func() { o.iterations = 30 },
			"footprint-load": func() { o.footprintLoad = time.Second },
			"no-standalone":  func() { o.skipStandalones = true },
		} {
			if !set[name] {
				apply()
			}
		}
	}
	for f := range strings.SplitSeq(*clients, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			return fmt.Errorf("-clients: bad level %q", f)
		}
		o.clients = append(o.clients, c)
	}
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			return fmt.Errorf("-log: %w", err)
		}
		defer f.Close()
		o.logOut = f
	}
	cmd := "all"
	if fs.NArg() > 0 {
		cmd = fs.Arg(0)
	}
	all := []string{"intake", "pipeline", "decide", "storage", "footprint"}
	sections := all
	if cmd != "all" {
		if !slices.Contains(all, cmd) {
			return fmt.Errorf("unknown benchmark %q (want all, %s)", cmd, strings.Join(all, ", "))
		}
		sections = []string{cmd}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep := report{
		Started: time.Now().UTC(), Command: cmd, Quick: o.quick, GoVersion: runtime.Version(),
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Skipped: map[string]string{}, Errors: map[string]string{}, Seconds: map[string]float64{},
	}
	pgOK, pgWhy := postgresReachable(ctx, o.pgURL)
	for _, s := range sections {
		began := time.Now()
		fmt.Printf("== %s\n", s)
		stopProfile, err := startProfile(o.cpuProfile, s)
		if err != nil {
			return err
		}
		switch s {
		case "intake":
			var r intakeResult
			if r, err = benchIntake(ctx, o); err == nil {
				rep.Intake = &r
			}
		case "pipeline":
			var r pipelineResult
			if r, err = benchPipeline(ctx, o); err == nil {
				rep.Pipeline = &r
			}
		case "decide":
			dbs := []string{"sqlite"}
			if pgOK {
				dbs = append(dbs, "postgres")
			} else {
				rep.Skipped["decide on postgres"] = pgWhy
			}
			for _, db := range dbs {
				var r decideResult
				if r, err = benchDecide(ctx, o, db); err != nil {
					break
				}
				rep.Decide = append(rep.Decide, r)
			}
		case "storage":
			dbs := []string{"sqlite"}
			if pgOK {
				dbs = append(dbs, "postgres")
			} else {
				rep.Skipped["storage on postgres"] = pgWhy
			}
			for _, db := range dbs {
				var r storageResult
				if r, err = benchStorage(ctx, o, db); err != nil {
					break
				}
				rep.Storage = append(rep.Storage, r)
			}
		case "footprint":
			var r footprintResult
			if r, err = benchFootprint(ctx, o); err == nil {
				rep.Footprint = &r
			}
		}
		stopProfile()
		rep.Seconds[s] = time.Since(began).Seconds()
		if err != nil {
			fmt.Printf("  FAILED: %v\n", err)
			rep.Errors[s] = err.Error()
			if ctx.Err() != nil {
				break
			}
		}
	}
	printReport(os.Stdout, rep)
	if err := writeReport(o.out, rep); err != nil {
		return err
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d benchmarks failed", len(rep.Errors))
	}
	return nil
}

// startProfile starts a CPU profile of the process into prefix-section.pprof, unless prefix is empty,
// and returns the function that stops it.
func startProfile(prefix, section string) (func(), error) {
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(prefix + "-" + section + ".pprof")
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		fmt.Printf("  cpu profile: %s\n", f.Name())
	}, nil
}

// writeReport writes rep as <command>[-quick]-<UTC time>.json in dir.
func writeReport(dir string, rep report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	name := rep.Command
	if rep.Quick {
		name += "-quick"
	}
	path := filepath.Join(dir, name+"-"+rep.Started.Format("20060102T150405Z")+".json")
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	fmt.Printf("\nresults: %s\n", path)
	return nil
}
