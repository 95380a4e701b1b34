// Package chaos is the crash and cluster harness: it runs Herald's three services as real processes on
// PostgreSQL and a NATS server (or cluster) of its own, pushes requests through the gateway's public API,
// approves them through the emailed links as a browser would, and meanwhile kills processes with SIGKILL
// (and restarts them), terminates the services' PostgreSQL connections, and restarts gateways one by one
// with SIGTERM. At the end it counts what a user would check: every accepted post final, published once,
// each approver mailed once per post. scripts/crashtest.sh and scripts/clustertest.sh run it.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// Config is one run.
type Config struct {
	// Requests is how many post requests are pushed; Rate how many a second (0: as fast as accepted).
	Requests int
	Rate     float64
	// Concurrency is the number of flows posting and of browsers approving.
	Concurrency int
	// Duration bounds the whole run after start-up: pushing, approving, and waiting for every accepted
	// post to be final. The run stops by itself when it is over.
	Duration time.Duration
	// Kills is how many random kills the crash run makes at most, one every KillEvery on average, while
	// requests are still being pushed or approved.
	Kills     int
	KillEvery time.Duration
	// Cluster runs the cluster scenario instead: one NATS node killed and brought back, one replica of
	// each service killed and restarted, and a rolling SIGTERM restart of the gateways.
	Cluster bool
	// NATSNodes (1, or 3 for a cluster with R3 streams) and Replicas of each service.
	NATSNodes int
	Replicas  int
	// Approvers of the department: each gets an email per post; the first link followed decides.
	Approvers int
	// PostgresURL is the shared server; the run works in fresh schemas and drops them after.
	PostgresURL string
	// Bins are the programs to run (see Build); Dir is where logs, stores and keys go.
	Bins Binaries
	Dir  string
	// ExtraEnv is given to every service (NAME=value).
	ExtraEnv []string
	// Progress receives a line now and then, and the report.
	Progress io.Writer
}

// event is one thing the harness did to the system and how long the system took to get over it.
type event struct {
	What string
	At   time.Time
	// Ready is when the component answered its readiness probe again; Progress when a request was
	// accepted and a post published after the event (the system as a whole working again).
	Ready, Progress time.Duration
	Err             string
}

type run struct {
	cfg   Config
	t     *topology
	c     *client
	start time.Time

	mu         sync.Mutex
	ids        map[int]string    // request number -> post id (the 202's)
	idClash    map[int][]string  // other ids a retry of the same Idempotency-Key got
	acceptedAt map[int]time.Time // when the 202 came
	refused    map[int]int       // request number -> final 4xx status (not retried)
	emails     map[int]map[string]int
	reminders  int
	strayMail  int
	linkQueued map[int]bool
	events     []*event
	approvedBy map[int]bool

	attemptsFailed atomic.Int64
	rolling        atomic.Bool  // a rolling restart is under way
	rollingFailed  atomic.Int64 // requests that failed at the gateway during it
	pushed         atomic.Bool
	pgTerminated   int
	links          chan approveJob
}

type approveJob struct {
	n    int
	link string
}

// Run starts everything, runs the scenario, prints the report to cfg.Progress and returns it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	t, err := start(ctx, cfg, cfg.Bins, cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer t.close()
	r := &run{
		cfg: cfg, t: t, c: newClient(t.gatewayURL(), t.apiKey, randomSuffix(), cfg.Concurrency*2), start: time.Now(),
		ids: map[int]string{}, idClash: map[int][]string{}, acceptedAt: map[int]time.Time{}, refused: map[int]int{},
		emails: map[int]map[string]int{}, linkQueued: map[int]bool{}, approvedBy: map[int]bool{},
		links: make(chan approveJob, cfg.Requests+16),
	}
	fmt.Fprintf(cfg.Progress, "chaos: %d NATS node(s), %d replica(s) of each service, PostgreSQL schemas %v; logs in %s\n",
		cfg.NATSNodes, cfg.Replicas, t.pgSchemas, t.logs.Name())
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	var wg sync.WaitGroup
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	wg.Go(func() { r.readMail(workCtx) })
	for range cfg.Concurrency {
		wg.Go(func() { r.approveLinks(workCtx) })
	}
	chaosDone := make(chan struct{})
	chaosCtx, stopChaos := context.WithCancel(ctx)
	go func() {
		defer close(chaosDone)
		if cfg.Cluster {
			r.clusterScenario(chaosCtx)
		} else {
			r.crashScenario(chaosCtx)
		}
	}()
	r.push(ctx)
	r.pushed.Store(true)
	fmt.Fprintf(cfg.Progress, "chaos: %.1fs: pushed %d requests, %d accepted\n", time.Since(r.start).Seconds(), cfg.Requests, r.acceptedCount())
	// Chaos goes on while approvals are being made (the cluster scenario to its end), then everything is
	// brought back up.
	r.waitApprovalsOrTimeout(ctx)
	if cfg.Cluster {
		select {
		case <-chaosDone:
		case <-ctx.Done():
		}
	}
	stopChaos()
	<-chaosDone
	r.ensureUp(ctx)
	fmt.Fprintf(cfg.Progress, "chaos: %.1fs: chaos over; waiting for every accepted post to be final\n", time.Since(r.start).Seconds())
	r.settle(ctx)
	stopWork()
	wg.Wait()

	rep, err := r.report(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	rep.Print(cfg.Progress)
	return rep, nil
}

// push sends every request, each retried with its Idempotency-Key until it is accepted or refused for
// good, as a flow with a retry policy would.
func (r *run) push(ctx context.Context) {
	lim := rate.NewLimiter(rate.Inf, 1)
	if r.cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(r.cfg.Rate), 1)
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for n := range next {
				r.pushOne(ctx, n)
			}
		})
	}
	for n := 1; n <= r.cfg.Requests; n++ {
		if lim.Wait(ctx) != nil {
			break
		}
		next <- n
	}
	close(next)
	wg.Wait()
}

func (r *run) pushOne(ctx context.Context, n int) {
	for ctx.Err() == nil {
		o := r.c.post(ctx, n)
		if o.err == nil && o.status == 202 {
			r.mu.Lock()
			if prev, ok := r.ids[n]; ok && prev != o.id {
				r.idClash[n] = append(r.idClash[n], o.id)
			} else if !ok {
				r.ids[n], r.acceptedAt[n] = o.id, time.Now()
			}
			r.mu.Unlock()
			return
		}
		// 409 is the gateway saying that the same Idempotency-Key is still being processed (by a gateway
		// that may have died meanwhile) and to retry for its answer; 408 and 429 say retry too.
		if o.err == nil && o.status >= 400 && o.status < 500 && o.status != 429 && o.status != 408 && o.status != 409 {
			r.mu.Lock()
			r.refused[n] = o.status
			r.mu.Unlock()
			return
		}
		r.attemptsFailed.Add(1)
		if r.rolling.Load() {
			r.rollingFailed.Add(1)
		}
		sleep(ctx, 100*time.Millisecond+rand.N(200*time.Millisecond))
	}
}

// readMail reads the mail sink: counts each approver's emails per post and queues the first link of
// each post for a browser to follow.
func (r *run) readMail(ctx context.Context) {
	seen := 0
	for {
		msgs := r.t.mailbox.Messages()
		for _, m := range msgs[seen:] {
			n := r.c.numberIn(m.Text)
			link := linkIn.FindString(m.Text)
			r.mu.Lock()
			switch {
			case n < 0 || link == "":
				r.strayMail++
			case strings.HasPrefix(m.Subject, "Reminder:"):
				r.reminders++
			default:
				if r.emails[n] == nil {
					r.emails[n] = map[string]int{}
				}
				for _, to := range m.To {
					r.emails[n][strings.ToLower(to)]++
				}
				if !r.linkQueued[n] {
					r.linkQueued[n] = true
					r.links <- approveJob{n: n, link: link}
				}
			}
			r.mu.Unlock()
		}
		seen = len(msgs)
		if !sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

// approveLinks follows the queued links, retrying while the gateway or the approval service is down.
func (r *run) approveLinks(ctx context.Context) {
	for {
		var job approveJob
		select {
		case <-ctx.Done():
			return
		case job = <-r.links:
		}
		for ctx.Err() == nil {
			d, _ := r.c.approve(ctx, job.link)
			if d != decisionRetry {
				r.mu.Lock()
				r.approvedBy[job.n] = true
				r.mu.Unlock()
				break
			}
			if r.rolling.Load() {
				r.rollingFailed.Add(1)
			}
			sleep(ctx, 200*time.Millisecond+rand.N(200*time.Millisecond))
		}
	}
}

func (r *run) acceptedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

// waitApprovalsOrTimeout waits until every accepted post's link was followed, or for a minute without
// progress, so that the chaos also covers the approvals and the publishing after the push.
func (r *run) waitApprovalsOrTimeout(ctx context.Context) {
	last, lastChange := -1, time.Now()
	for ctx.Err() == nil {
		r.mu.Lock()
		done, want := len(r.approvedBy), len(r.ids)
		r.mu.Unlock()
		if done >= want {
			return
		}
		if done != last {
			last, lastChange = done, time.Now()
		}
		if time.Since(lastChange) > time.Minute {
			return
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

// crashScenario kills a random part every KillEvery or so (SIGKILL, or pg_terminate_backend for
// PostgreSQL, once), and restarts it after a random pause, until the approvals are done or Kills kills
// were made.
func (r *run) crashScenario(ctx context.Context) {
	targets := []string{"gateway", "approval", "publisher", "nats"}
	pgAt := min(2, r.cfg.Kills-1)
	for i := 0; i < r.cfg.Kills; i++ {
		if !sleep(ctx, r.cfg.KillEvery/2+rand.N(r.cfg.KillEvery)) {
			return
		}
		if i == pgAt {
			r.killPostgres(ctx)
			continue
		}
		target := targets[rand.N(len(targets))]
		if target == "nats" {
			r.killNATS(ctx, rand.N(len(r.t.natsProc)))
		} else {
			rs := r.t.replicasOf(service(target))
			r.killReplica(ctx, rs[rand.N(len(rs))], rand.N(time.Second))
		}
	}
}

// clusterScenario does, with pauses between: a rolling SIGTERM restart of the gateways (first, while
// requests are surely being pushed), then kills one NATS node with SIGKILL and brings it back, then kills
// one replica of each service and restarts it.
func (r *run) clusterScenario(ctx context.Context) {
	pause := func() bool { return sleep(ctx, r.cfg.KillEvery/2+rand.N(r.cfg.KillEvery)) }
	if !pause() {
		return
	}
	r.rollingRestart(ctx)
	if !pause() {
		return
	}
	r.killNATS(ctx, rand.N(len(r.t.natsProc)))
	for _, s := range []service{svcApproval, svcPublisher, svcGateway} {
		if !pause() {
			return
		}
		rs := r.t.replicasOf(s)
		r.killReplica(ctx, rs[rand.N(len(rs))], 2*time.Second)
	}
}

func (r *run) record(e *event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	fmt.Fprintf(r.cfg.Progress, "chaos: %.1fs: %s\n", e.At.Sub(r.start).Seconds(), e.What)
}

// killReplica kills a service replica with SIGKILL, waits down, restarts it and waits until it is ready.
func (r *run) killReplica(ctx context.Context, rep *replica, down time.Duration) {
	e := &event{What: "SIGKILL " + rep.proc.name, At: time.Now()}
	r.record(e)
	if err := rep.proc.kill(); err != nil {
		e.Err = err.Error()
	}
	sleep(ctx, down)
	r.restart(ctx, e, rep.proc, rep.ops+"/readyz")
}

// killNATS kills one NATS node with SIGKILL and restarts it on the same store.
func (r *run) killNATS(ctx context.Context, i int) {
	p, nd := r.t.natsProc[i], r.t.nats[i]
	e := &event{What: "SIGKILL " + nd.name, At: time.Now()}
	r.record(e)
	if err := p.kill(); err != nil {
		e.Err = err.Error()
	}
	sleep(ctx, rand.N(2*time.Second))
	r.restart(ctx, e, p, nd.opsURL+"/healthz?js-enabled-only=true")
}

func (r *run) restart(ctx context.Context, e *event, p *proc, readyURL string) {
	// Restarted even when ctx is over: the run must end with everything up.
	if err := p.start(context.WithoutCancel(ctx)); err != nil {
		e.Err = err.Error()
		return
	}
	if err := waitReady(context.WithoutCancel(ctx), readyURL, 90*time.Second); err != nil {
		e.Err = err.Error()
		return
	}
	e.Ready = time.Since(e.At)
}

// killPostgres terminates every PostgreSQL connection of the run's services.
func (r *run) killPostgres(ctx context.Context) {
	e := &event{What: "pg_terminate_backend of the services' connections", At: time.Now()}
	r.record(e)
	n, err := r.t.terminatePostgres(ctx)
	if err != nil {
		e.Err = err.Error()
	}
	r.mu.Lock()
	r.pgTerminated += n
	r.mu.Unlock()
	var errs []error
	for _, rep := range r.t.replicas {
		if rep.svc != svcGateway {
			errs = append(errs, waitReady(context.WithoutCancel(ctx), rep.ops+"/readyz", 90*time.Second))
		}
	}
	if err := errors.Join(errs...); err != nil {
		e.Err = err.Error()
		return
	}
	e.Ready = time.Since(e.At)
}

// rollingRestart restarts each gateway with SIGTERM, the next one only once the restarted one is ready,
// as a Deployment's rolling update does. Requests that fail meanwhile are counted.
func (r *run) rollingRestart(ctx context.Context) {
	r.rolling.Store(true)
	defer r.rolling.Store(false)
	for _, rep := range r.t.replicasOf(svcGateway) {
		e := &event{What: "SIGTERM " + rep.proc.name + " (rolling restart)", At: time.Now()}
		r.record(e)
		if err := rep.proc.signal(syscall.SIGTERM, 60*time.Second); err != nil {
			e.Err = err.Error()
		}
		r.restart(ctx, e, rep.proc, rep.ops+"/readyz")
	}
	// The balancer's next probes see the last one ready.
	sleep(ctx, 300*time.Millisecond)
}

// ensureUp starts whatever is down (a kill interrupted by the end of the chaos).
func (r *run) ensureUp(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for i, p := range r.t.natsProc {
		if p.pid() == 0 {
			_ = p.start(ctx)
			_ = waitReady(ctx, r.t.nats[i].opsURL+"/healthz?js-enabled-only=true", 90*time.Second)
		}
	}
	for _, rep := range r.t.replicas {
		if rep.proc.pid() == 0 {
			_ = rep.proc.start(ctx)
			_ = waitReady(ctx, rep.ops+"/readyz", 90*time.Second)
		}
	}
}

// settle waits until every accepted post is final in the approval service, or the run's time is up.
func (r *run) settle(ctx context.Context) {
	conn, err := r.approvalConn()
	if err != nil {
		return
	}
	defer conn.Close()
	r.mu.Lock()
	open := map[int]string{}
	for n, id := range r.ids {
		open[n] = id
	}
	r.mu.Unlock()
	last := time.Now()
	for len(open) > 0 && ctx.Err() == nil {
		for n, id := range open {
			st, known, err := r.postStatus(ctx, conn, id)
			if err == nil && known && final(st) {
				delete(open, n)
			}
		}
		if time.Since(last) > 10*time.Second {
			fmt.Fprintf(r.cfg.Progress, "chaos: %.1fs: %d accepted posts not final yet\n", time.Since(r.start).Seconds(), len(open))
			last = time.Now()
		}
		sleep(ctx, time.Second)
	}
}

func (r *run) approvalConn() (*grpc.ClientConn, error) {
	return grpc.NewClient(r.t.apLB.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// postStatus asks the approval service (with the admin token, as ops would) for a post's status.
func (r *run) postStatus(ctx context.Context, conn *grpc.ClientConn, id string) (approvalv1.PostStatus, bool, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := approvalv1.NewApprovalServiceClient(conn).GetPost(ctx, &approvalv1.GetPostRequest{PostId: id, DepartmentId: r.t.deptID}, grpc.WaitForReady(true))
	if status.Code(err) == codes.NotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return resp.GetPost().GetStatus(), true, nil
}

// final says whether a post's status is one it will not leave by itself. Unknown is final for the
// system (ops resolve it) and counted apart.
func final(s approvalv1.PostStatus) bool {
	switch s {
	case approvalv1.PostStatus_POST_STATUS_PENDING, approvalv1.PostStatus_POST_STATUS_APPROVED, approvalv1.PostStatus_POST_STATUS_UNSPECIFIED:
		return false
	}
	return true
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
