package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// footprintResult is the memory of Herald's processes against the hello-world gRPC server, idle and
// under load, and how long the local stack takes to be ready.
type footprintResult struct {
	LoadClients int     `json:"load_clients"`
	LoadSeconds float64 `json:"load_seconds"`
	// Processes are the one-process stack (deploy/local) and the baseline.
	Processes []processFootprint `json:"processes"`
	// ReadySec is from exec to the stack's banner; StackReadySec is what the stack itself reports
	// (from the start of stack.Start, without the process's own start).
	ReadySec      float64 `json:"ready_seconds"`
	StackReadySec float64 `json:"stack_ready_seconds"`
	// Ratios are the stack's RSS over the baseline's, idle and under load.
	IdleRatio   float64 `json:"idle_ratio"`
	LoadedRatio float64 `json:"loaded_ratio"`
}

// processFootprint is one process's resident memory.
type processFootprint struct {
	Name      string  `json:"name"`
	IdleMiB   float64 `json:"idle_rss_mib"`
	LoadedMiB float64 `json:"loaded_rss_mib"`
	// Accepted is how many requests the load got answered, to show it was load.
	Accepted int `json:"accepted"`
}

// child is a benchmark's process with its standard output read line by line.
type child struct {
	cmd     *exec.Cmd
	lines   chan string
	stopped sync.Once
}

// startChild starts bin with env; what it writes to standard error goes to stderr (a log file, or
// io.Discard).
func startChild(ctx context.Context, bin string, env []string, stderr io.Writer) (*child, error) {
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = env
	cmd.Stderr = stderr
	// SIGTERM rather than a kill when ctx ends: the stack then shuts down cleanly.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 64)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c, nil
}

// waitLine returns the first line containing substr.
func (c *child) waitLine(substr string, limit time.Duration) (string, error) {
	timeout := time.After(limit)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("process ended before printing %q", substr)
			}
			if strings.Contains(l, substr) {
				return l, nil
			}
		case <-timeout:
			return "", fmt.Errorf("no %q after %s", substr, limit)
		}
	}
}

// stop ends the process with SIGTERM and waits for it, draining its output.
func (c *child) stop() {
	c.stopped.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		go func() {
			for range c.lines {
			}
		}()
		_ = c.cmd.Wait()
	})
}

// rssMiB reads VmRSS from /proc/<pid>/status.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				return 0, fmt.Errorf("rss: %w", err)
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, errors.New("rss: no VmRSS in /proc status")
}

// peakRSS samples pid's RSS every 100 ms while load runs and returns the highest value.
func peakRSS(pid int, load func()) (float64, error) {
	stop := make(chan struct{})
	var peak float64
	var sampleErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			r, err := rssMiB(pid)
			if err != nil {
				sampleErr = err
				return
			}
			peak = max(peak, r)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	load()
	close(stop)
	wg.Wait()
	return peak, sampleErr
}

// idleRSS lets a process settle for a second after its first requests and reads its RSS.
func idleRSS(ctx context.Context, pid int) (float64, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(time.Second):
	}
	return rssMiB(pid)
}

// goBuild builds pkg (relative to the workspace root, the working directory) into dir.
func goBuild(ctx context.Context, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return bin, nil
}

// cleanEnv is the process's environment without HERALD_* variables, so that the stack a benchmark
// starts is configured by the benchmark alone.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// benchFootprint builds deploy/local and the hello-world gRPC server, starts each as a process, and
// reads their RSS idle and under o.footprintLoad of 16 clients.
func benchFootprint(ctx context.Context, o options) (footprintResult, error) {
	const clients = 16
	res := footprintResult{LoadClients: clients, LoadSeconds: o.footprintLoad.Seconds()}
	dir, err := os.MkdirTemp("", "herald-bench-bin-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	local, err := goBuild(ctx, dir, "./deploy/local")
	if err != nil {
		return res, err
	}
	hello, err := goBuild(ctx, dir, "./deploy/bench/hellogrpc")
	if err != nil {
		return res, err
	}

	// The baseline.
	hp, err := startChild(ctx, hello, cleanEnv(), io.Discard)
	if err != nil {
		return res, err
	}
	defer hp.stop()
	line, err := hp.waitLine("listening on ", 30*time.Second)
	if err != nil {
		return res, fmt.Errorf("hellogrpc: %w", err)
	}
	conn, err := grpc.NewClient(strings.TrimPrefix(line, "listening on "), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return res, fmt.Errorf("hellogrpc: %w", err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	check := func(ctx context.Context, _ int64) (int, error) {
		if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			return 0, err
		}
		return 200, nil
	}
	runLoad(ctx, 1, 100*time.Millisecond, 10, check)
	base := processFootprint{Name: "hello-world gRPC server"}
	if base.IdleMiB, err = idleRSS(ctx, hp.cmd.Process.Pid); err != nil {
		return res, err
	}
	var load loadResult
	if base.LoadedMiB, err = peakRSS(hp.cmd.Process.Pid, func() { load = runLoad(ctx, clients, o.footprintLoad, 0, check) }); err != nil {
		return res, err
	}
	base.Accepted = load.Accepted

	// The one-process stack, on free ports in a data directory of its own.
	data, err := os.MkdirTemp("", "herald-bench-local-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(data)
	env := cleanEnv("HERALD_DATA_DIR="+data, "HERALD_GATEWAY_ADDR=127.0.0.1:0", "HERALD_APPROVAL_GRPC_ADDR=127.0.0.1:0",
		"HERALD_PUBLISHER_GRPC_ADDR=127.0.0.1:0", "HERALD_APPROVAL_HTTP_ADDR=127.0.0.1:0", "HERALD_PUBLISHER_HTTP_ADDR=127.0.0.1:0",
		"HERALD_LOCAL_SMTP_ADDR=127.0.0.1:0", "HERALD_LOCAL_MAILBOX_ADDR=127.0.0.1:0", "HERALD_LOCAL_SANDBOX_ADDR=127.0.0.1:0",
		"HERALD_LOCAL_NATS_ADDR=127.0.0.1:0")
	env = append(env, unlimited()...)
	began := time.Now()
	lp, err := startChild(ctx, local, env, io.Discard)
	if err != nil {
		return res, err
	}
	defer lp.stop()
	line, err = lp.waitLine("Herald is running", 60*time.Second)
	if err != nil {
		return res, fmt.Errorf("deploy/local: %w", err)
	}
	res.ReadySec = time.Since(began).Seconds()
	if _, err := fmt.Sscanf(line[strings.Index(line, "ready in "):], "ready in %fs", &res.StackReadySec); err != nil {
		return res, fmt.Errorf("deploy/local banner %q: %w", line, err)
	}
	gatewayLine, err := lp.waitLine("Gateway (connector API)", 5*time.Second)
	if err != nil {
		return res, fmt.Errorf("deploy/local: %w", err)
	}
	keyLine, err := lp.waitLine("Its API key:", 5*time.Second)
	if err != nil {
		return res, fmt.Errorf("deploy/local: %w", err)
	}
	gw := strings.Fields(gatewayLine)
	key := strings.Fields(keyLine)
	post := postTo(newClient(clients), gw[len(gw)-1]+"/v1/posts", key[len(key)-1], randomSuffix())
	if warm := runLoad(ctx, 1, 5*time.Second, 10, post); warm.Accepted != 10 {
		return res, fmt.Errorf("deploy/local: warm-up posts: %v %s", warm.Statuses, warm.FirstError)
	}
	stackFP := processFootprint{Name: "Herald, one process (deploy/local)"}
	if stackFP.IdleMiB, err = idleRSS(ctx, lp.cmd.Process.Pid); err != nil {
		return res, err
	}
	if stackFP.LoadedMiB, err = peakRSS(lp.cmd.Process.Pid, func() { load = runLoad(ctx, clients, o.footprintLoad, 0, post) }); err != nil {
		return res, err
	}
	stackFP.Accepted = load.Accepted
	res.Processes = []processFootprint{stackFP}
	lp.stop()
	if !o.skipStandalones {
		procs, err := standaloneFootprint(ctx, o, dir, clients)
		if err != nil {
			return res, fmt.Errorf("standalone services: %w", err)
		}
		res.Processes = append(res.Processes, procs...)
	}
	res.Processes = append(res.Processes, base)
	res.IdleRatio, res.LoadedRatio = stackFP.IdleMiB/base.IdleMiB, stackFP.LoadedMiB/base.LoadedMiB
	fmt.Printf("  ready in %.2fs (stack %.2fs); RSS idle %.1f MiB (%.1fx hello %.1f), loaded %.1f MiB (%.1fx hello %.1f)\n",
		res.ReadySec, res.StackReadySec, stackFP.IdleMiB, res.IdleRatio, base.IdleMiB, stackFP.LoadedMiB, res.LoadedRatio, base.LoadedMiB)
	return res, nil
}
