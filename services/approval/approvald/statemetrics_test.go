package approvald

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

type fakeState struct {
	overdueBefore time.Time
	overdue       []string
	unknown       []approval.Post
	outbox        []approval.OutboxItem
	failPosts     bool
}

func (f *fakeState) OverduePosts(_ context.Context, now time.Time, _ int) ([]string, error) {
	f.overdueBefore = now
	return f.overdue, nil
}

func (f *fakeState) ListPosts(_ context.Context, flt approval.PostFilter) ([]approval.Post, error) {
	if f.failPosts {
		return nil, errors.New("database down")
	}
	if flt.Status != approval.StatusUnknown {
		return nil, errors.New("asked for status " + string(flt.Status))
	}
	return f.unknown, nil
}

func (f *fakeState) DueOutbox(_ context.Context, _ time.Time, _ int) ([]approval.OutboxItem, error) {
	return f.outbox, nil
}

func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		out[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
	}
	return out
}

func TestStateCollector(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	store := &fakeState{
		overdue: []string{"a", "b"},
		unknown: []approval.Post{{ID: "u"}},
		outbox: []approval.OutboxItem{
			{ID: 1, NextAttemptAt: now.Add(-90 * time.Second)},         // due for 90 s
			{ID: 2, NextAttemptAt: now.Add(-time.Second), Attempts: 1}, // due, failed once
			{ID: 3, NextAttemptAt: now.Add(time.Hour), Attempts: 3},    // failing, backing off
			{ID: 4, NextAttemptAt: now.Add(36 * time.Hour)},            // a reminder, scheduled
		},
	}
	got := gather(t, &stateCollector{store: store, now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)})
	want := map[string]float64{
		"herald_approval_posts_overdue":             2,
		"herald_approval_posts_unknown":             1,
		"herald_approval_outbox_due":                2,
		"herald_approval_outbox_oldest_due_seconds": 90,
		"herald_approval_outbox_failing":            2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if want := now.Add(-overdueGrace); !store.overdueBefore.Equal(want) {
		t.Errorf("overdue counted before %v, want %v (a minute's grace for the sweep)", store.overdueBefore, want)
	}

	// A failing query leaves its gauge out rather than reporting zero, which would look healthy.
	store.failPosts = true
	got = gather(t, &stateCollector{store: store, now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)})
	if _, ok := got["herald_approval_posts_unknown"]; ok {
		t.Errorf("unknown posts reported as %v while the query fails", got["herald_approval_posts_unknown"])
	}
	if got["herald_approval_posts_overdue"] != 2 {
		t.Errorf("the other gauges went missing: %v", got)
	}
}
