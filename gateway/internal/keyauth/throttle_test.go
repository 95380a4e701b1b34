package keyauth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldhq/herald/gateway/internal/keyauth"
)

// TestUnknownKeysAreCachedBriefly: a refused key is refused again without asking until the negative TTL
// ends, then asked about again.
func TestUnknownKeysAreCachedBriefly(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)}
	a, fake := setup(t, time.Hour, keyauth.WithClock(clk.Now), keyauth.WithNegativeTTL(5*time.Second))
	ctx := context.Background()
	steps := []struct {
		advance   time.Duration
		wantCalls int32
	}{
		{0, 1},
		{time.Second, 1},
		{3 * time.Second, 1},
		{time.Second, 2}, // 5 s after the first refusal
		{time.Second, 2},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		if _, err := a.Authenticate(ctx, "hk_unknown", "198.51.100."+string(rune('1'+i))); !errors.Is(err, keyauth.ErrInvalidKey) {
			t.Fatalf("step %d: %v, want ErrInvalidKey", i, err)
		}
		if n := fake.calls.Load(); n != s.wantCalls {
			t.Errorf("step %d: %d calls, want %d", i, n, s.wantCalls)
		}
	}
}

// TestNegativeCacheIsBounded: more unknown keys than the bound never fail, and a valid key is still
// accepted (the bound only costs calls).
func TestNegativeCacheIsBounded(t *testing.T) {
	t.Parallel()
	a, _ := setup(t, time.Hour, keyauth.WithMaxEntries(3), keyauth.WithFailureLimit(1000, time.Second, 10))
	ctx := context.Background()
	for i := range 20 {
		if _, err := a.Authenticate(ctx, "hk_unknown_"+string(rune('a'+i)), client); !errors.Is(err, keyauth.ErrInvalidKey) {
			t.Fatalf("unknown key %d: %v", i, err)
		}
	}
	if _, err := a.Authenticate(ctx, "hk_good", client); err != nil {
		t.Errorf("valid key: %v", err)
	}
}

// TestRepeatedFailuresAreThrottled: a client gets burst bad keys per window; then it is answered
// ErrThrottled with how long to wait, without the approval service being asked, while other clients and
// keys already known valid go on. Tries come back one per window/burst.
func TestRepeatedFailuresAreThrottled(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)}
	// Burst 3 per 30 s: one try regained every 10 s. No negative cache, to count calls plainly.
	a, fake := setup(t, time.Hour, keyauth.WithClock(clk.Now), keyauth.WithNegativeTTL(0), keyauth.WithFailureLimit(3, 30*time.Second, 100))
	ctx := context.Background()
	const attacker, neighbour = "203.0.113.7", "203.0.113.8"
	if _, err := a.Authenticate(ctx, "hk_good", attacker); err != nil {
		t.Fatal(err)
	}

	type step struct {
		name      string
		advance   time.Duration
		key       string
		from      string
		wantErr   error
		wantWait  time.Duration
		wantCalls int32
	}
	steps := []step{
		{name: "first bad key", key: "hk_bad", from: attacker, wantErr: keyauth.ErrInvalidKey, wantCalls: 2},
		{name: "second", key: "hk_bad", from: attacker, wantErr: keyauth.ErrInvalidKey, wantCalls: 3},
		{name: "third", key: "hk_bad", from: attacker, wantErr: keyauth.ErrInvalidKey, wantCalls: 4},
		{name: "fourth is throttled, not asked", key: "hk_bad", from: attacker, wantErr: keyauth.ErrThrottled, wantWait: 10 * time.Second, wantCalls: 4},
		{name: "a key that may be valid is throttled too", key: "hk_other", from: attacker, wantErr: keyauth.ErrThrottled, wantWait: 10 * time.Second, wantCalls: 4},
		{name: "the cached valid key still works", key: "hk_good", from: attacker, wantCalls: 4},
		{name: "another client is not throttled", key: "hk_bad", from: neighbour, wantErr: keyauth.ErrInvalidKey, wantCalls: 5},
		{name: "4 s later: 6 s to wait", advance: 4 * time.Second, key: "hk_bad", from: attacker, wantErr: keyauth.ErrThrottled, wantWait: 6 * time.Second, wantCalls: 5},
		{name: "10 s later: one try", advance: 6 * time.Second, key: "hk_bad", from: attacker, wantErr: keyauth.ErrInvalidKey, wantCalls: 6},
		{name: "and throttled again", key: "hk_bad", from: attacker, wantErr: keyauth.ErrThrottled, wantWait: 10 * time.Second, wantCalls: 6},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		_, err := a.Authenticate(ctx, s.key, s.from)
		if s.wantErr == nil && err != nil || s.wantErr != nil && !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.wantErr)
		}
		var te *keyauth.ThrottledError
		if errors.As(err, &te) && te.RetryAfter != s.wantWait {
			t.Errorf("%s: retry after %v, want %v", s.name, te.RetryAfter, s.wantWait)
		}
		if n := fake.calls.Load(); n != s.wantCalls {
			t.Errorf("%s: %d calls, want %d", s.name, n, s.wantCalls)
		}
	}
}
