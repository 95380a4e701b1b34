package events

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal"
	"github.com/heraldhq/herald/services/heraldshared/seal/sealtest"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// fakeLedger records the approvals it was handed and answers err.
type fakeLedger struct {
	err error
	got []ledger.Approval
}

func (l *fakeLedger) HandleApproved(_ context.Context, a ledger.Approval) error {
	l.got = append(l.got, a)
	return l.err
}

// msg is a JetStream message with a subject and a payload; the handler reads nothing else.
type msg struct {
	jetstream.Msg
	subject string
	data    []byte
}

func (m msg) Subject() string { return m.subject }
func (m msg) Data() []byte    { return m.data }

var at = time.Date(2026, 11, 23, 14, 23, 9, 44363000, time.UTC)

// handler builds the handler under test, trusting keys and counting refusals by reason.
func handler(t *testing.T, d Domain, keys *seal.Keyring) (eventbus.Handler, map[string]int) {
	t.Helper()
	refused := map[string]int{}
	h, err := Handler(d, keys, func(reason string) { refused[reason]++ })
	if err != nil {
		t.Fatal(err)
	}
	return h, refused
}

// sealed seals ev as the approval service does.
func sealed(signer *seal.Signer, ev *eventsv1.PostApproved) *eventsv1.PostApproved {
	sum := seal.TextHash(ev.Text)
	ev.TextSha256 = sum[:]
	s := signer.Sign(seal.Approval{PostID: ev.PostId, DepartmentID: ev.DepartmentId, TextSHA256: sum, Approver: ev.ApprovedBy, ApprovedAt: ev.ApprovedAt.AsTime()})
	ev.Seal = &eventsv1.Seal{KeyId: s.KeyID, Signature: s.Signature}
	return ev
}

func encode(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandlerDecodesTheApproval(t *testing.T) {
	t.Parallel()
	signer, keys := sealtest.NewKey(t)
	l := &fakeLedger{}
	ev := sealed(signer, &eventsv1.PostApproved{PostId: "p1", DepartmentId: "d1", Text: "Hello", ApprovedBy: "comms@example.com", ApprovedAt: timestamppb.New(at), Comment: "Lovely"})
	h, refused := handler(t, l, keys)
	if err := h(context.Background(), msg{subject: eventbus.SubjectApproved, data: encode(t, ev)}); err != nil {
		t.Fatal(err)
	}
	want := []ledger.Approval{{PostID: "p1", DepartmentID: "d1", Text: "Hello", ApprovedBy: "comms@example.com", ApprovedAt: at}}
	if diff := cmp.Diff(want, l.got); diff != "" {
		t.Errorf("approvals handed to the ledger (-want +got):\n%s", diff)
	}
	if len(refused) != 0 {
		t.Errorf("a genuine approval was counted as refused: %v", refused)
	}
}

// TestHandlerRefusesForgedApprovals: someone able to publish on herald.posts.approved tries to get a post
// of their own published. None reaches the ledger; each is refused for good and counted.
func TestHandlerRefusesForgedApprovals(t *testing.T) {
	t.Parallel()
	signer, keys := sealtest.NewKey(t)
	attacker, _ := sealtest.NewKey(t)
	genuine := func() *eventsv1.PostApproved {
		return sealed(signer, &eventsv1.PostApproved{PostId: "p1", DepartmentId: "d1", Text: "Approved text", ApprovedBy: "comms@example.com", ApprovedAt: timestamppb.New(at)})
	}
	tests := []struct {
		name   string
		event  *eventsv1.PostApproved
		reason string
	}{
		{"hand-built, unsealed", &eventsv1.PostApproved{PostId: "p1", DepartmentId: "d1", Text: "Buy crypto now", ApprovedBy: "comms@example.com", ApprovedAt: timestamppb.New(at)}, "unsigned"},
		{"sealed by the attacker's own key", sealed(attacker, &eventsv1.PostApproved{PostId: "p1", DepartmentId: "d1", Text: "Buy crypto now", ApprovedBy: "comms@example.com", ApprovedAt: timestamppb.New(at)}), "unknown_key"},
		{"genuine seal, text swapped", func() *eventsv1.PostApproved { ev := genuine(); ev.Text = "Buy crypto now"; return ev }(), "text_mismatch"},
		{"genuine seal, text and hash swapped", func() *eventsv1.PostApproved {
			ev := genuine()
			ev.Text = "Buy crypto now"
			sum := seal.TextHash(ev.Text)
			ev.TextSha256 = sum[:]
			return ev
		}(), "bad_signature"},
		{"genuine seal, text swapped, hash left out", func() *eventsv1.PostApproved {
			ev := genuine()
			ev.Text, ev.TextSha256 = "Buy crypto now", nil
			return ev
		}(), "bad_signature"},
		{"genuine seal moved to another post", func() *eventsv1.PostApproved { ev := genuine(); ev.PostId = "p2"; return ev }(), "bad_signature"},
		{"genuine seal, other approver", func() *eventsv1.PostApproved { ev := genuine(); ev.ApprovedBy = "mallory@example.com"; return ev }(), "bad_signature"},
		{"genuine seal, signature cut", func() *eventsv1.PostApproved { ev := genuine(); ev.Seal.Signature = ev.Seal.Signature[:10]; return ev }(), "bad_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := &fakeLedger{}
			h, refused := handler(t, l, keys)
			err := h(context.Background(), msg{subject: eventbus.SubjectApproved, data: encode(t, tt.event)})
			if err == nil || !eventbus.IsPermanent(err) {
				t.Fatalf("handler = %v, want a permanent refusal", err)
			}
			if len(l.got) != 0 {
				t.Errorf("the ledger was handed %v", l.got)
			}
			if want := map[string]int{tt.reason: 1}; !cmp.Equal(refused, want) {
				t.Errorf("refusals counted %v, want %v", refused, want)
			}
		})
	}
}

func TestHandlerClassifiesErrors(t *testing.T) {
	t.Parallel()
	signer, keys := sealtest.NewKey(t)
	valid := encode(t, sealed(signer, &eventsv1.PostApproved{PostId: "p1", Text: "Hello", ApprovedAt: timestamppb.New(at)}))
	tests := []struct {
		name          string
		subject       string
		data          []byte
		ledgerErr     error
		wantErr       bool
		wantPermanent bool
		wantAfter     time.Duration // a RetryAfter with this delay
	}{
		{name: "published", subject: eventbus.SubjectApproved, data: valid},
		{name: "payload that does not decode", subject: eventbus.SubjectApproved, data: []byte{0xff, 0xff}, wantErr: true, wantPermanent: true},
		{name: "subject nobody expects", subject: eventbus.SubjectRejected, data: valid, wantErr: true, wantPermanent: true},
		{name: "ledger says invalid", subject: eventbus.SubjectApproved, data: valid, ledgerErr: fmt.Errorf("%w: no text", ledger.ErrInvalid), wantErr: true, wantPermanent: true},
		{name: "rate limited: retry after the reset", subject: eventbus.SubjectApproved, data: valid, ledgerErr: &ledger.RetryLaterError{After: time.Minute, Err: errors.New("429")}, wantErr: true, wantAfter: time.Minute},
		{name: "X down: retry with backoff", subject: eventbus.SubjectApproved, data: valid, ledgerErr: &ledger.RetryLaterError{Err: errors.New("503")}, wantErr: true},
		{name: "database down: retry", subject: eventbus.SubjectApproved, data: valid, ledgerErr: errors.New("connection refused"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := handler(t, &fakeLedger{err: tt.ledgerErr}, keys)
			err := h(context.Background(), msg{subject: tt.subject, data: tt.data})
			if (err != nil) != tt.wantErr || eventbus.IsPermanent(err) != tt.wantPermanent {
				t.Errorf("handler = %v (permanent %v); want error %v, permanent %v", err, eventbus.IsPermanent(err), tt.wantErr, tt.wantPermanent)
			}
			if after, ok := eventbus.RetryDelay(err); tt.wantAfter > 0 && (!ok || after != tt.wantAfter) {
				t.Errorf("handler = %v; want a retry after %s, got %s (%v)", err, tt.wantAfter, after, ok)
			}
			if tt.ledgerErr != nil && !errors.Is(err, tt.ledgerErr) {
				t.Errorf("handler = %v; the ledger's error %v is lost", err, tt.ledgerErr)
			}
		})
	}
}

// recorder is a ProtoPublisher that keeps what it was given.
type recorder struct {
	subject, msgID string
	event          proto.Message
}

func (r *recorder) PublishProto(_ context.Context, subject, msgID string, m proto.Message) error {
	r.subject, r.msgID, r.event = subject, msgID, m
	return nil
}

func TestAnnouncerBuildsOutcomeEvents(t *testing.T) {
	t.Parallel()
	signer, _ := sealtest.NewKey(t)
	sealOf := func(o seal.Outcome) *eventsv1.Seal {
		s := signer.Sign(o)
		return &eventsv1.Seal{KeyId: s.KeyID, Signature: s.Signature}
	}
	base := ledger.Publication{PostID: "p1", Channel: "x", Text: "Hello", Attempts: 1, CreatedAt: at.Add(-time.Second), UpdatedAt: at}
	with := func(f func(*ledger.Publication)) ledger.Publication {
		p := base
		f(&p)
		return p
	}
	tests := []struct {
		name        string
		pub         ledger.Publication
		wantSubject string
		wantMsgID   string
		want        proto.Message
	}{
		{
			name: "published",
			pub: with(func(p *ledger.Publication) {
				p.State, p.RemoteID, p.URL = ledger.StatePublished, "18", "https://x.com/i/web/status/18"
			}),
			wantSubject: eventbus.SubjectPublished,
			wantMsgID:   "p1:published",
			want: &eventsv1.PostPublished{PostId: "p1", Channel: "x", RemoteId: "18", Url: "https://x.com/i/web/status/18", PublishedAt: timestamppb.New(at),
				Seal: sealOf(seal.Outcome{PostID: "p1", Channel: "x", State: seal.StatePublished, RemoteID: "18", URL: "https://x.com/i/web/status/18", At: at})},
		},
		{
			name:        "failed",
			pub:         with(func(p *ledger.Publication) { p.State, p.Error = ledger.StateFailed, "duplicate content" }),
			wantSubject: eventbus.SubjectFailed,
			wantMsgID:   "p1:failed",
			want: &eventsv1.PostFailed{PostId: "p1", Channel: "x", Reason: "duplicate content", FailedAt: timestamppb.New(at),
				Seal: sealOf(seal.Outcome{PostID: "p1", Channel: "x", State: seal.StateFailed, Reason: "duplicate content", At: at})},
		},
		{
			name:        "unknown",
			pub:         with(func(p *ledger.Publication) { p.State, p.Error = ledger.StateUnknown, "timeout" }),
			wantSubject: eventbus.SubjectUnknown,
			wantMsgID:   "p1:unknown",
			want: &eventsv1.PostUnknown{PostId: "p1", Channel: "x", Reason: "timeout", At: timestamppb.New(at),
				Seal: sealOf(seal.Outcome{PostID: "p1", Channel: "x", State: seal.StateUnknown, Reason: "timeout", At: at})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			a, err := NewAnnouncer(rec, signer)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Announce(context.Background(), tt.pub); err != nil {
				t.Fatal(err)
			}
			if rec.subject != tt.wantSubject || rec.msgID != tt.wantMsgID {
				t.Errorf("published on %s with id %s; want %s with id %s", rec.subject, rec.msgID, tt.wantSubject, tt.wantMsgID)
			}
			if diff := cmp.Diff(tt.want, rec.event, protocmp.Transform()); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnnouncerRefusesAnAttempt(t *testing.T) {
	t.Parallel()
	signer, _ := sealtest.NewKey(t)
	rec := &recorder{}
	a, err := NewAnnouncer(rec, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Announce(context.Background(), ledger.Publication{PostID: "p1", State: ledger.StateAttempting}); err == nil || rec.event != nil {
		t.Errorf("Announce(attempting) = %v, published %v; want an error and nothing published", err, rec.event)
	}
}

// TestHandlerChecksThePicturesSealed: the seal covers the pictures' hashes in order; an approval with a
// picture added, removed, swapped or re-hashed is refused, and a genuine one reaches the ledger with them.
func TestHandlerChecksThePicturesSealed(t *testing.T) {
	t.Parallel()
	signer, keys := sealtest.NewKey(t)
	h1, h2 := seal.TextHash("picture one"), seal.TextHash("picture two")
	genuine := func() *eventsv1.PostApproved {
		ev := &eventsv1.PostApproved{PostId: "p1", DepartmentId: "d1", Text: "With pictures", ApprovedBy: "comms@example.com", ApprovedAt: timestamppb.New(at),
			Media: []*eventsv1.MediaRef{{ObjectName: "p1/0", Sha256: h1[:], ContentType: "image/png", Size: 3}, {ObjectName: "p1/1", Sha256: h2[:], ContentType: "image/gif", Size: 4}}}
		sum := seal.TextHash(ev.Text)
		ev.TextSha256 = sum[:]
		s := signer.Sign(seal.Approval{PostID: "p1", DepartmentID: "d1", TextSHA256: sum, MediaSHA256: [][32]byte{h1, h2}, Approver: ev.ApprovedBy, ApprovedAt: at})
		ev.Seal = &eventsv1.Seal{KeyId: s.KeyID, Signature: s.Signature}
		return ev
	}
	l := &fakeLedger{}
	h, _ := handler(t, l, keys)
	if err := h(context.Background(), msg{subject: eventbus.SubjectApproved, data: encode(t, genuine())}); err != nil {
		t.Fatal(err)
	}
	want := []ledger.Media{{Name: "p1/0", SHA256: h1, ContentType: "image/png", Size: 3}, {Name: "p1/1", SHA256: h2, ContentType: "image/gif", Size: 4}}
	if len(l.got) != 1 || !cmp.Equal(l.got[0].Media, want) {
		t.Fatalf("the ledger got %v, want the pictures %v", l.got, want)
	}
	forged := seal.TextHash("forged")
	for name, spoil := range map[string]func(ev *eventsv1.PostApproved){
		"a picture removed":    func(ev *eventsv1.PostApproved) { ev.Media = ev.Media[:1] },
		"a picture added":      func(ev *eventsv1.PostApproved) { ev.Media = append(ev.Media, ev.Media[0]) },
		"pictures swapped":     func(ev *eventsv1.PostApproved) { ev.Media[0], ev.Media[1] = ev.Media[1], ev.Media[0] },
		"another hash":         func(ev *eventsv1.PostApproved) { ev.Media[1].Sha256 = forged[:] },
		"a hash cut short":     func(ev *eventsv1.PostApproved) { ev.Media[1].Sha256 = h2[:31] },
		"all pictures dropped": func(ev *eventsv1.PostApproved) { ev.Media = nil },
	} {
		ev := genuine()
		spoil(ev)
		l := &fakeLedger{}
		h, _ := handler(t, l, keys)
		if err := h(context.Background(), msg{subject: eventbus.SubjectApproved, data: encode(t, ev)}); err == nil || !eventbus.IsPermanent(err) || len(l.got) != 0 {
			t.Errorf("%s: %v, ledger got %v; want a permanent refusal", name, err, l.got)
		}
	}
}
