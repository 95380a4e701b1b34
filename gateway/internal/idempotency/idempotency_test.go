package idempotency_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/gateway/internal/idempotency"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

// clock is a settable clock for stale claims.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func setup(t *testing.T) (*idempotency.Store, *clock) {
	t.Helper()
	nc, err := nats.Connect(natstest.Embedded(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(context.Background(), eventbus.IdempotencyBucketConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC).UnixNano())
	s, err := idempotency.New(kv, c.now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bodyA, bodyB := idempotency.BodyHash("Welcome!", "jo"), idempotency.BodyHash("Welcome", "!jo")
	if bodyA == bodyB {
		t.Fatal("BodyHash does not separate its fields")
	}
	type step struct {
		name    string
		dept    string
		body    string
		advance time.Duration
		// then ends the claim a step obtained: "accept", "fail" or "" (left in flight).
		then       string
		wantClaim  bool
		wantReplay bool
		wantErr    error
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"same body after acceptance replays, another body is refused", []step{
			{name: "first", dept: "hr", body: bodyA, then: "accept", wantClaim: true},
			{name: "retry", dept: "hr", body: bodyA, wantReplay: true},
			{name: "other body", dept: "hr", body: bodyB, wantErr: idempotency.ErrMismatch},
		}},
		{"a request in flight makes the same body wait and refuses another", []step{
			{name: "first", dept: "hr", body: bodyA, wantClaim: true},
			{name: "racing retry", dept: "hr", body: bodyA, wantErr: idempotency.ErrInFlight},
			{name: "racing other body", dept: "hr", body: bodyB, wantErr: idempotency.ErrMismatch},
		}},
		{"a failed request can be retried with its body only", []step{
			{name: "first", dept: "hr", body: bodyA, then: "fail", wantClaim: true},
			{name: "other body", dept: "hr", body: bodyB, wantErr: idempotency.ErrMismatch},
			{name: "retry", dept: "hr", body: bodyA, then: "accept", wantClaim: true},
			{name: "retry again", dept: "hr", body: bodyA, wantReplay: true},
		}},
		{"an abandoned claim is taken over once stale", []step{
			{name: "first", dept: "hr", body: bodyA, wantClaim: true},
			{name: "too soon", dept: "hr", body: bodyA, advance: 59 * time.Second, wantErr: idempotency.ErrInFlight},
			{name: "stale", dept: "hr", body: bodyA, advance: time.Second, wantClaim: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, clk := setup(t)
			for _, st := range tc.steps {
				clk.advance(st.advance)
				c, replay, err := s.Claim(ctx, "post-1", st.dept, st.body)
				if !errors.Is(err, st.wantErr) || replay != st.wantReplay || (c != nil) != st.wantClaim {
					t.Fatalf("%s: Claim = %v, %v, %v; want claim %v, replay %v, err %v", st.name, c, replay, err, st.wantClaim, st.wantReplay, st.wantErr)
				}
				var end error
				switch st.then {
				case "accept":
					end = s.Accept(ctx, c)
				case "fail":
					end = s.Fail(ctx, c)
				}
				if end != nil {
					t.Fatalf("%s: %s: %v", st.name, st.then, end)
				}
			}
		})
	}
}

func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	const n = 8
	var wg sync.WaitGroup
	var won, lost atomic.Int32
	for i := range n {
		wg.Go(func() {
			// Half of them send another body: they must never win while the first holds the key, and the
			// winner may be either body.
			body := idempotency.BodyHash("text", string(rune('a'+i%2)))
			c, _, err := s.Claim(context.Background(), "post-2", "hr", body)
			switch {
			case c != nil:
				won.Add(1)
			case errors.Is(err, idempotency.ErrInFlight), errors.Is(err, idempotency.ErrMismatch):
				lost.Add(1)
			default:
				t.Errorf("Claim: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || lost.Load() != n-1 {
		t.Fatalf("%d claims won and %d lost; want exactly one winner", won.Load(), lost.Load())
	}
}

func TestAccepted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := setup(t)
	c, _, err := s.Claim(ctx, "post-3", "hr", idempotency.BodyHash("x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key, dept string
		want            bool
	}{{"in flight", "post-3", "hr", false}} {
		if got, err := s.Accepted(ctx, tc.key, tc.dept); err != nil || got != tc.want {
			t.Errorf("%s: Accepted = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if err := s.Accept(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key, dept string
		want            bool
	}{
		{"accepted", "post-3", "hr", true},
		{"another department's", "post-3", "finance", false},
		{"unknown", "post-4", "hr", false},
	} {
		if got, err := s.Accepted(ctx, tc.key, tc.dept); err != nil || got != tc.want {
			t.Errorf("%s: Accepted = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}
