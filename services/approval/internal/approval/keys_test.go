package approval_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/sqlite"
)

// TestRequestsAreCheckedAgainstTheirAPIKey: a request names the key that authenticated it. One naming an
// unknown key, another department's, or a key revoked before the stream stored the request creates no
// post and mails nobody, whatever time the request claims for itself: a forged PostRequested must not
// reach approvers once a key is revoked. Requests from before gateways sent the key id pass.
func TestRequestsAreCheckedAgainstTheirAPIKey(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	key, _, err := f.svc.CreateAPIKey(ctx, f.dept.ID, "flow")
	if err != nil {
		t.Fatal(err)
	}
	revoked, _, err := f.svc.CreateAPIKey(ctx, f.dept.ID, "old flow")
	if err != nil {
		t.Fatal(err)
	}
	revokedAt := *f.now
	if _, err := f.svc.RevokeAPIKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	finance, err := f.svc.CreateDepartment(ctx, "Finance")
	if err != nil {
		t.Fatal(err)
	}
	financeKey, _, err := f.svc.CreateAPIKey(ctx, finance.ID, "flow")
	if err != nil {
		t.Fatal(err)
	}
	before, after := revokedAt.Add(-time.Minute), revokedAt.Add(time.Minute)

	tests := []struct {
		name        string
		keyID       string
		requestedAt time.Time
		storedAt    time.Time
		wantRefused bool
	}{
		{name: "no key id: queued before gateways sent one", keyID: ""},
		{name: "the department's valid key", keyID: key.ID, requestedAt: after, storedAt: after},
		{name: "an unknown key", keyID: uuid.NewString(), wantRefused: true},
		{name: "another department's key", keyID: financeKey.ID, wantRefused: true},
		{name: "a key revoked before the request was stored", keyID: revoked.ID, requestedAt: after, storedAt: after, wantRefused: true},
		{name: "a forged request dated before the revocation, stored after it", keyID: revoked.ID, requestedAt: before, storedAt: after, wantRefused: true},
		{name: "a revoked key's request stored before the revocation (redelivered)", keyID: revoked.ID, requestedAt: before, storedAt: before},
		{name: "without the stream's time, the request's own", keyID: revoked.ID, requestedAt: after, wantRefused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uuid.NewString()
			err := f.svc.Submit(ctx, approval.Request{
				PostID: id, DepartmentID: f.dept.ID, Text: "Hello", RequestedBy: "jo",
				RequestedAt: tt.requestedAt, StoredAt: tt.storedAt, APIKeyID: tt.keyID,
			})
			if tt.wantRefused {
				if !errors.Is(err, approval.ErrKeyRefused) || !errors.Is(err, approval.ErrInvalid) {
					t.Fatalf("Submit = %v, want ErrKeyRefused and ErrInvalid (never retried)", err)
				}
				if _, err := f.svc.GetPost(ctx, id, ""); !errors.Is(err, approval.ErrNotFound) {
					t.Errorf("refused request left a post: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Submit = %v, want it accepted", err)
			}
			audit, err := f.svc.ListAudit(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(audit) != 1 || audit[0].Action != "requested" || audit[0].APIKeyID != tt.keyID {
				t.Errorf("audit = %+v, want one requested row naming key %q", audit, tt.keyID)
			}
		})
	}
	// Only the accepted requests' approvers were mailed: three accepted posts, two approvers each.
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.mail.Messages()); n != 6 {
		t.Errorf("%d emails, want 6 (two approvers for each of three accepted requests)", n)
	}
}

type nopMailer struct{}

func (nopMailer) SendApprovalRequest(context.Context, approval.ApprovalEmail) error { return nil }

type nopAnnouncer struct{}

func (nopAnnouncer) PostApproved(context.Context, approval.Post) error  { return nil }
func (nopAnnouncer) PostRejected(context.Context, approval.Post) error  { return nil }
func (nopAnnouncer) PostExpired(context.Context, approval.Post) error   { return nil }
func (nopAnnouncer) PostCancelled(context.Context, approval.Post) error { return nil }

// revocations records the keys announced as revoked, failing when told to.
type revocations struct {
	keys []string
	err  error
}

func (r *revocations) KeyRevoked(_ context.Context, k approval.APIKey) error {
	r.keys = append(r.keys, k.ID)
	return r.err
}

// TestRevocationIsAnnounced: revoking a key tells the gateways; an announcement that fails does not undo
// or fail the revocation, which the gateways' cache TTL then bounds.
func TestRevocationIsAnnounced(t *testing.T) {
	t.Parallel()
	for _, announceErr := range []error{nil, errors.New("nats: connection closed")} {
		store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		rev := &revocations{err: announceErr}
		svc, err := approval.NewService(store, nopMailer{}, nopAnnouncer{}, approval.Config{PublicURL: "http://gw", KeyRevocations: rev}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		d, err := svc.CreateDepartment(ctx, "HR")
		if err != nil {
			t.Fatal(err)
		}
		k, secret, err := svc.CreateAPIKey(ctx, d.ID, "flow")
		if err != nil {
			t.Fatal(err)
		}
		got, err := svc.RevokeAPIKey(ctx, k.ID)
		if err != nil || got.RevokedAt.IsZero() {
			t.Fatalf("announcement error %v: RevokeAPIKey = %+v, %v", announceErr, got, err)
		}
		if len(rev.keys) != 1 || rev.keys[0] != k.ID {
			t.Errorf("announcement error %v: announced %v, want [%s]", announceErr, rev.keys, k.ID)
		}
		if _, err := svc.AuthenticateKey(ctx, secret); !errors.Is(err, approval.ErrUnauthorized) {
			t.Errorf("announcement error %v: revoked key authenticates: %v", announceErr, err)
		}
		if _, err := svc.RevokeAPIKey(ctx, uuid.NewString()); !errors.Is(err, approval.ErrNotFound) || len(rev.keys) != 1 {
			t.Errorf("unknown key: %v, announced %v", err, rev.keys)
		}
	}
}
