package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// Report is what a run counted. The goal is zero in every field below Posted, except the events.
type Report struct {
	Cluster bool
	Elapsed time.Duration
	// Requests pushed; Accepted with 202; RefusedByGateway with a 4xx that is not worth retrying;
	// NeverAccepted ran out of time retrying.
	Requests, Accepted, RefusedByGateway, NeverAccepted int
	// FailedAttempts are POSTs that got an error or a 5xx and were retried with the same Idempotency-Key.
	FailedAttempts int
	// Known are accepted posts the approval service has; Decided those past pending; Published,
	// Rejected, Failed and Unknown by status; Posted the requests found in the sandbox's timeline.
	Known, Decided, Published, Rejected, FailedPosts, Unknown, Posted int
	// Lost are accepted posts that are not final (missing, pending or approved) at the end.
	Lost int
	// DuplicatePosts are extra tweets of a request in the timeline, plus extra post ids a retry of one
	// Idempotency-Key got.
	DuplicatePosts int
	// PublishedNotPosted are posts the approval service says are published that the timeline lacks.
	PublishedNotPosted int
	// Emails per approver per post: the most any approver got about one post, how many (post, approver)
	// pairs got more than one, approval emails in all, reminders, and mail this run cannot place.
	MaxEmailsPerApprover, DuplicateEmails, Emails, Reminders, StrayEmails int
	// MissingEmails are (accepted post, approver) pairs that got no email.
	MissingEmails int
	// RollingFailures are requests (posts and approvals) that failed at the gateway during the rolling
	// restart.
	RollingFailures int
	// SelfRestarts are exits the harness did not cause (a service that could not start while NATS was
	// down, say), restarted after a second.
	SelfRestarts map[string]int
	// PGConnectionsTerminated by pg_terminate_backend.
	PGConnectionsTerminated int
	Events                  []event
	// LostIDs are some of the lost posts' ids and statuses, to look them up in the logs.
	LostIDs []string
	// RefusedStatuses counts the 4xx answers that ended a request, by status.
	RefusedStatuses map[int]int
	// OutboxLeft are the approval service's outbox rows left at the end, by kind, with how many of them
	// are under a lease (claimed by a replica that has not finished them: one that was killed).
	OutboxLeft []string
	// StreamReplicas are the streams' replica counts at the end (R3 wanted in a cluster run).
	StreamReplicas map[string]int
	WantReplicas   int
	// Clues are the processes' log lines that name a lost post, to start the search from.
	Clues []string
}

// Failed says why the run failed, or "" if it did not: lost posts, duplicate posts or duplicate
// emails; in a cluster run also unknown outcomes, requests failed during the rolling restart, and
// events the system did not recover from.
func (rep *Report) Failed() string {
	var why []string
	check := func(n int, what string) {
		if n != 0 {
			why = append(why, fmt.Sprintf("%d %s", n, what))
		}
	}
	check(rep.Lost, "lost")
	check(rep.DuplicatePosts, "duplicate posts")
	check(rep.DuplicateEmails, "duplicate emails")
	check(rep.PublishedNotPosted, "published but not in the timeline")
	if rep.Accepted == 0 {
		why = append(why, "nothing accepted")
	}
	if rep.Cluster {
		check(rep.Unknown, "unknown")
		check(rep.RollingFailures, "failed requests during the rolling restart")
		for name, n := range rep.StreamReplicas {
			if n != rep.WantReplicas {
				why = append(why, fmt.Sprintf("stream %s has %d replicas, want %d", name, n, rep.WantReplicas))
			}
		}
		for _, e := range rep.Events {
			if e.Err != "" {
				why = append(why, e.What+": "+e.Err)
			}
		}
	}
	return strings.Join(why, ", ")
}

func (r *run) report(ctx context.Context) (*Report, error) {
	rep := &Report{Cluster: r.cfg.Cluster, Elapsed: time.Since(r.start), Requests: r.cfg.Requests,
		FailedAttempts: int(r.attemptsFailed.Load()), RollingFailures: int(r.rollingFailed.Load()), SelfRestarts: map[string]int{}}
	conn, err := r.approvalConn()
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	// What the sandbox posted, by request number, and when (for the recovery times).
	posted := map[int]int{}
	var tweetTimes []time.Time
	for _, tw := range r.t.sandbox.Tweets() {
		if n := r.c.numberIn(tw.Text); n >= 0 {
			posted[n]++
			tweetTimes = append(tweetTimes, tw.CreatedAt)
		}
	}
	rep.Posted = len(posted)
	for _, k := range posted {
		rep.DuplicatePosts += k - 1
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Accepted, rep.RefusedByGateway = len(r.ids), len(r.refused)
	rep.RefusedStatuses = map[int]int{}
	for _, st := range r.refused {
		rep.RefusedStatuses[st]++
	}
	rep.NeverAccepted = rep.Requests - rep.Accepted - rep.RefusedByGateway
	for _, extra := range r.idClash {
		rep.DuplicatePosts += len(extra)
	}
	var lostIDs []string
	for n, id := range r.ids {
		st, known, err := r.postStatus(ctx, conn, id)
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", id, err)
		}
		if known {
			rep.Known++
		}
		switch {
		case !known || !final(st):
			rep.Lost++
			lostIDs = append(lostIDs, id)
			if len(rep.LostIDs) < 10 {
				rep.LostIDs = append(rep.LostIDs, fmt.Sprintf("#%d %s (%s)", n, id, map[bool]string{true: st.String(), false: "not in the approval service"}[known]))
			}
		case st == approvalv1.PostStatus_POST_STATUS_PUBLISHED:
			rep.Published++
			if posted[n] == 0 {
				rep.PublishedNotPosted++
			}
		case st == approvalv1.PostStatus_POST_STATUS_REJECTED:
			rep.Rejected++
		case st == approvalv1.PostStatus_POST_STATUS_FAILED:
			rep.FailedPosts++
		case st == approvalv1.PostStatus_POST_STATUS_UNKNOWN:
			rep.Unknown++
		}
		if known && st != approvalv1.PostStatus_POST_STATUS_PENDING {
			rep.Decided++
		}
		for i := range r.cfg.Approvers {
			k := r.emails[n][approverEmail(i)]
			rep.Emails += k
			rep.MaxEmailsPerApprover = max(rep.MaxEmailsPerApprover, k)
			if k > 1 {
				rep.DuplicateEmails++
			}
			if k == 0 {
				rep.MissingEmails++
			}
		}
	}
	rep.Reminders, rep.StrayEmails = r.reminders, r.strayMail
	rep.PGConnectionsTerminated = r.pgTerminated
	for _, p := range append(append([]*proc(nil), r.t.natsProc...), replicaProcs(r.t)...) {
		if _, crashes := p.counts(); crashes > 0 {
			rep.SelfRestarts[p.name] = crashes
		}
	}
	rep.OutboxLeft = r.t.outboxLeft(ctx)
	rep.WantReplicas = r.cfg.NATSNodes
	if rep.StreamReplicas, err = r.t.streamReplicas(ctx); err != nil {
		rep.StreamReplicas = map[string]int{err.Error(): 0}
	}
	rep.Clues = clues(r.t.logs.Name(), lostIDs, 40)
	var accepts []time.Time
	for _, at := range r.acceptedAt {
		accepts = append(accepts, at)
	}
	for _, e := range r.events {
		ev := *e
		// Progress: the first request accepted and the first post published after the event, whichever
		// is later (one of them alone when nothing more was pushed, or nothing more approved).
		a, okA := firstAfter(accepts, e.At)
		p, okP := firstAfter(tweetTimes, e.At)
		switch {
		case okA && okP:
			ev.Progress = a.Sub(e.At)
			if p.After(a) {
				ev.Progress = p.Sub(e.At)
			}
		case okA:
			ev.Progress = a.Sub(e.At)
		case okP:
			ev.Progress = p.Sub(e.At)
		}
		rep.Events = append(rep.Events, ev)
	}
	return rep, nil
}

// clues returns up to limit lines of the log file that name one of ids.
func clues(logFile string, ids []string, limit int) []string {
	if len(ids) == 0 {
		return nil
	}
	f, err := os.Open(logFile)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() && len(out) < limit {
		line := sc.Text()
		for _, id := range ids {
			if strings.Contains(line, id) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

func replicaProcs(t *topology) []*proc {
	var ps []*proc
	for _, r := range t.replicas {
		ps = append(ps, r.proc)
	}
	return ps
}

func firstAfter(ts []time.Time, at time.Time) (time.Time, bool) {
	var best time.Time
	for _, t := range ts {
		if t.After(at) && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	return best, !best.IsZero()
}

// Print writes the report for people.
func (rep *Report) Print(w io.Writer) {
	kind := "Crash run"
	if rep.Cluster {
		kind = "Cluster run"
	}
	fmt.Fprintf(w, "\n%s: %s\n", kind, rep.Elapsed.Round(time.Second))
	row := func(label string, v any) { fmt.Fprintf(w, "  %-44s %v\n", label, v) }
	row("requests pushed", rep.Requests)
	row("accepted with 202", rep.Accepted)
	row("refused by the gateway (4xx)", fmt.Sprintf("%d %v", rep.RefusedByGateway, rep.RefusedStatuses))
	row("never accepted (time ran out retrying)", rep.NeverAccepted)
	row("attempts retried (error or 5xx)", rep.FailedAttempts)
	row("known to the approval service", rep.Known)
	row("decided", rep.Decided)
	row("published (status)", rep.Published)
	row("posted in the sandbox", rep.Posted)
	row("duplicate posts", rep.DuplicatePosts)
	row("published but not in the timeline", rep.PublishedNotPosted)
	row("lost (accepted, never final)", rep.Lost)
	row("unknown (ops must resolve)", rep.Unknown)
	row("failed", rep.FailedPosts)
	row("rejected", rep.Rejected)
	row("approval emails", rep.Emails)
	row("emails per approver per post: max", rep.MaxEmailsPerApprover)
	row("emails per approver per post: pairs > 1", rep.DuplicateEmails)
	row("(post, approver) pairs without an email", rep.MissingEmails)
	row("reminders / mail not from this run", fmt.Sprintf("%d / %d", rep.Reminders, rep.StrayEmails))
	if rep.Cluster {
		row("requests failed during the rolling restart", rep.RollingFailures)
	}
	row("stream replicas", fmt.Sprint(rep.StreamReplicas))
	if rep.PGConnectionsTerminated > 0 {
		row("PostgreSQL connections terminated", rep.PGConnectionsTerminated)
	}
	if len(rep.SelfRestarts) > 0 {
		names := make([]string, 0, len(rep.SelfRestarts))
		for n, k := range rep.SelfRestarts {
			names = append(names, fmt.Sprintf("%s %d", n, k))
		}
		sort.Strings(names)
		row("exits on their own (restarted)", strings.Join(names, ", "))
	}
	fmt.Fprintf(w, "  events (ready = the part answers its probe again; progress = a request accepted and a post published after it):\n")
	for _, e := range rep.Events {
		line := fmt.Sprintf("    %-58s ready %6.2fs  progress %6.2fs", e.What, e.Ready.Seconds(), e.Progress.Seconds())
		if e.Err != "" {
			line += "  ERROR " + e.Err
		}
		fmt.Fprintln(w, line)
	}
	if len(rep.OutboxLeft) > 0 {
		row("approval outbox left (kind: rows, leased)", strings.Join(rep.OutboxLeft, "; "))
	}
	for _, id := range rep.LostIDs {
		fmt.Fprintf(w, "  lost: %s\n", id)
	}
	for _, l := range rep.Clues {
		fmt.Fprintf(w, "  log: %s\n", l)
	}
	if why := rep.Failed(); why != "" {
		fmt.Fprintf(w, "FAIL: %s\n", why)
	} else {
		fmt.Fprintf(w, "OK\n")
	}
}
