package keyauth_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/heraldhq/herald/gateway/internal/keyauth"
	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

// listening returns an Authenticator with a 30 s TTL on a clock that never moves, subscribed to
// revocations on a real NATS server, and a connection to announce them on.
func listening(t *testing.T) (*keyauth.Authenticator, *approvals, *nats.Conn) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)}
	a, fake := setup(t, 30*time.Second, keyauth.WithClock(clk.Now))
	url := natstest.Embedded(t)
	gw, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	if _, err := a.Listen(gw, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	approval, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(approval.Close)
	return a, fake, approval
}

func announce(t *testing.T, nc *nats.Conn, data []byte) {
	t.Helper()
	if err := nc.Publish(eventbus.SubjectKeysRevoked, data); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func revocation(t *testing.T, keyID string) []byte {
	t.Helper()
	b, err := proto.Marshal(&eventsv1.KeyRevoked{KeyId: keyID, DepartmentId: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRevocationIsAnnouncedWithinASecond: once the approval service announces a revocation, the key is
// refused within a second, although the cache's TTL is 30 s and the clock never reaches it.
func TestRevocationIsAnnouncedWithinASecond(t *testing.T) {
	t.Parallel()
	a, fake, approval := listening(t)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "hk_good", client); err != nil {
		t.Fatal(err)
	}
	fake.revoked.Store(true)
	announce(t, approval, revocation(t, "k1"))

	deadline := time.Now().Add(time.Second)
	for {
		_, err := a.Authenticate(ctx, "hk_good", client)
		if errors.Is(err, keyauth.ErrInvalidKey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked key still accepted a second after the announcement: %v", err)
		}
		runtime.Gosched()
	}
}

// TestForgedRevocationsGrantNothing: anyone able to publish on the subject can only make the gateway check
// a key again. Garbage is ignored; an announcement for a valid key costs one call and the key stays valid;
// none makes an unknown key valid.
func TestForgedRevocationsGrantNothing(t *testing.T) {
	t.Parallel()
	a, fake, forger := listening(t)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "hk_good", client); err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{{0xff, 0xff}, revocation(t, ""), revocation(t, "k-other"), revocation(t, "k1")} {
		announce(t, forger, data)
	}
	// The last announcement evicts k1; wait until its re-check happened, then it is cached again.
	deadline := time.Now().Add(5 * time.Second)
	for fake.calls.Load() < 2 {
		if _, err := a.Authenticate(ctx, "hk_good", client); err != nil {
			t.Fatalf("valid key refused after a forged revocation: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the forged revocation of k1 never made the gateway check it again")
		}
		runtime.Gosched()
	}
	for range 3 {
		if d, err := a.Authenticate(ctx, "hk_good", client); err != nil || d.KeyID != "k1" {
			t.Fatalf("valid key after a forged revocation: %+v, %v", d, err)
		}
	}
	if n := fake.calls.Load(); n != 2 {
		t.Errorf("%d calls to the approval service, want 2 (the first check and one re-check)", n)
	}
	if _, err := a.Authenticate(ctx, "hk_unknown", client); !errors.Is(err, keyauth.ErrInvalidKey) {
		t.Errorf("unknown key after forged revocations: %v, want ErrInvalidKey", err)
	}
}
