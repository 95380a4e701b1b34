package ledger_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal/sealtest"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
	"github.com/heraldhq/herald/services/heraldshared/testenv/pgtest"
	"github.com/heraldhq/herald/services/publisher/internal/events"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/store/postgres"
	"github.com/heraldhq/herald/services/publisher/internal/xapi"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

// TestTwoReplicasPostAnApprovalOnce runs two publisher ledgers on one PostgreSQL schema, each with its own
// X client, and hands every approval to both at the same time, twice each (as a redelivery to the other
// replica while the first still works on it would): X must receive each post exactly once, and the
// ledger must end published with its id.
func TestTwoReplicasPostAnApprovalOnce(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	creds := xapi.Credentials{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats"}
	sb, err := xsandbox.New(xsandbox.Config{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	nc, js, err := eventbus.Connect(ctx, natstest.Embedded(t), "ledger-replicas-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pub, _ := eventbus.NewPublisher(js, 5*time.Second)
	signer, _ := sealtest.NewKey(t)
	announcer, err := events.NewAnnouncer(pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	var stores [2]*postgres.Store
	var replicas [2]*ledger.Service
	for i := range replicas {
		if stores[i], err = postgres.Open(ctx, url, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stores[i].Close() })
		client, err := xapi.New(srv.URL, creds, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if replicas[i], err = ledger.NewService(stores[i], client, announcer, slog.New(slog.DiscardHandler),
			ledger.WithPolicy(ledger.Policy{VisibilityDelay: 100 * time.Millisecond, MaxAttempts: 3, MaxChecks: 5})); err != nil {
			t.Fatal(err)
		}
	}
	const approvals = 10
	evs := make([]ledger.Approval, approvals)
	for i := range evs {
		evs[i] = approved(fmt.Sprintf("Replica race %d", i))
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, ev := range evs {
		for i := range 4 {
			wg.Go(func() {
				<-start
				// An error asks for redelivery, which the loop below stands for.
				_ = replicas[i%2].HandleApproved(ctx, ev)
			})
		}
	}
	close(start)
	wg.Wait()
	// Redeliveries settle whatever the race left in flight.
	for _, ev := range evs {
		for _, r := range replicas {
			if err := r.HandleApproved(ctx, ev); err != nil {
				t.Errorf("redelivery of %s: %v", ev.PostID, err)
			}
		}
	}
	copies := map[string]int{}
	for _, tw := range sb.Tweets() {
		copies[tw.Text]++
	}
	for _, ev := range evs {
		if copies[ev.Text] != 1 {
			t.Errorf("X has %d copies of %q, want exactly 1", copies[ev.Text], ev.Text)
		}
		got, err := stores[1].Get(ctx, ev.PostID)
		if err != nil || got.State != ledger.StatePublished || got.RemoteID == "" {
			t.Errorf("ledger for %s: %+v, %v; want published with the post's id", ev.PostID, got, err)
		}
	}
}
