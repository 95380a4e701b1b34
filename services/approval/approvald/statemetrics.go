package approvald

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

// stateLimit caps each count read at a scrape: past it the gauge says "at least this many", which is
// all an alert needs, and a scrape stays one bounded query per gauge however large the backlog.
const stateLimit = 1000

// overdueGrace is how long past its deadline a pending post may stay before it counts as overdue: the
// expiry sweep runs every second, so a post still pending a minute after its deadline means the sweep
// is not running or failing.
const overdueGrace = time.Minute

var (
	overdueDesc = prometheus.NewDesc("herald_approval_posts_overdue",
		"Pending posts more than a minute past their deadline (the expiry sweep should have expired them), up to 1000. The database is shared: every replica reports the same number.",
		nil, nil)
	unknownDesc = prometheus.NewDesc("herald_approval_posts_unknown",
		"Posts whose publication is unknown: the publisher could not tell whether they went out, and ops must resolve them. Up to 1000.",
		nil, nil)
	outboxDueDesc = prometheus.NewDesc("herald_approval_outbox_due",
		"Outbox items (emails, reminders, announcements, Teams cards) due and not delivered yet, up to 1000.",
		nil, nil)
	outboxOldestDesc = prometheus.NewDesc("herald_approval_outbox_oldest_due_seconds",
		"How long the longest-waiting due outbox item has been due (0 when none is).",
		nil, nil)
	outboxFailingDesc = prometheus.NewDesc("herald_approval_outbox_failing",
		"Outbox items whose last delivery attempt failed and that wait to be tried again, among the first 1000 by due time.",
		nil, nil)
)

// stateReader is what the state metrics read of the store.
type stateReader interface {
	OverduePosts(ctx context.Context, now time.Time, limit int) ([]string, error)
	ListPosts(ctx context.Context, f approval.PostFilter) ([]approval.Post, error)
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]approval.OutboxItem, error)
}

// stateCollector reports, at each scrape, the states an operator is alerted on, read from the database:
// posts the expiry sweep left behind, publications in doubt, and the outbox's backlog. A query that
// fails leaves its gauges out of the scrape (and is logged) rather than reporting zero.
type stateCollector struct {
	store stateReader
	now   func() time.Time
	log   *slog.Logger
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{overdueDesc, unknownDesc, outboxDueDesc, outboxOldestDesc, outboxFailingDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := c.now().UTC()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }

	if ids, err := c.store.OverduePosts(ctx, now.Add(-overdueGrace), stateLimit); err != nil {
		c.log.Warn("metrics: overdue posts", "err", err)
	} else {
		gauge(overdueDesc, float64(len(ids)))
	}
	if posts, err := c.store.ListPosts(ctx, approval.PostFilter{Status: approval.StatusUnknown, Limit: stateLimit}); err != nil {
		c.log.Warn("metrics: unknown posts", "err", err)
	} else {
		gauge(unknownDesc, float64(len(posts)))
	}
	// Every item, due or scheduled (reminders wait for days), ordered by due time: the due ones first.
	items, err := c.store.DueOutbox(ctx, now.AddDate(100, 0, 0), stateLimit)
	if err != nil {
		c.log.Warn("metrics: outbox", "err", err)
		return
	}
	due, failing, oldest := 0, 0, 0.0
	for _, it := range items {
		if !it.NextAttemptAt.After(now) {
			due++
			oldest = max(oldest, now.Sub(it.NextAttemptAt).Seconds())
		}
		if it.Attempts > 0 {
			failing++
		}
	}
	gauge(outboxDueDesc, float64(due))
	gauge(outboxOldestDesc, oldest)
	gauge(outboxFailingDesc, float64(failing))
}
