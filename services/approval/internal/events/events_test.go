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
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal"
	"github.com/heraldhq/herald/services/heraldshared/seal/sealtest"
)

// fakeDomain records what it was called with and answers err.
type fakeDomain struct {
	err   error
	calls []any
}

func (d *fakeDomain) Submit(_ context.Context, r approval.Request) error {
	d.calls = append(d.calls, r)
	return d.err
}

func (d *fakeDomain) RecordPublished(_ context.Context, r approval.PublisherReport) error {
	d.calls = append(d.calls, "published", r)
	return d.err
}

func (d *fakeDomain) RecordFailed(_ context.Context, r approval.PublisherReport) error {
	d.calls = append(d.calls, "failed", r)
	return d.err
}

func (d *fakeDomain) RecordUnknown(_ context.Context, r approval.PublisherReport) error {
	d.calls = append(d.calls, "unknown", r)
	return d.err
}

func (d *fakeDomain) FailRequest(_ context.Context, r approval.Request, cause error) error {
	d.calls = append(d.calls, "fail", r, cause.Error())
	return d.err
}

// msg is a JetStream message with a subject and a payload; the handler reads nothing else.
type msg struct {
	jetstream.Msg
	subject string
	data    []byte
	stored  time.Time
}

func (m msg) Subject() string { return m.subject }
func (m msg) Data() []byte    { return m.data }
func (m msg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Timestamp: m.stored}, nil
}

func encode(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var at = time.Date(2026, 11, 23, 14, 23, 9, 44363000, time.UTC)

func protoSeal(s seal.Seal) *eventsv1.Seal {
	return &eventsv1.Seal{KeyId: s.KeyID, Signature: s.Signature}
}

// sealed returns outcome events sealed by signer, as the publisher sends them.
func sealedPublished(signer *seal.Signer, ev *eventsv1.PostPublished) *eventsv1.PostPublished {
	ev.Seal = protoSeal(signer.Sign(seal.Outcome{PostID: ev.PostId, Channel: ev.Channel, State: seal.StatePublished, RemoteID: ev.RemoteId, URL: ev.Url, At: ev.PublishedAt.AsTime()}))
	return ev
}

func sealedFailed(signer *seal.Signer, ev *eventsv1.PostFailed) *eventsv1.PostFailed {
	ev.Seal = protoSeal(signer.Sign(seal.Outcome{PostID: ev.PostId, Channel: ev.Channel, State: seal.StateFailed, Reason: ev.Reason, At: ev.FailedAt.AsTime()}))
	return ev
}

func sealedUnknown(signer *seal.Signer, ev *eventsv1.PostUnknown) *eventsv1.PostUnknown {
	ev.Seal = protoSeal(signer.Sign(seal.Outcome{PostID: ev.PostId, Channel: ev.Channel, State: seal.StateUnknown, Reason: ev.Reason, At: ev.At.AsTime()}))
	return ev
}

// handler builds the handler under test, counting refusals by reason.
func handler(t *testing.T, d Domain, keys *seal.Keyring) (eventbus.Handler, map[string]int) {
	t.Helper()
	refused := map[string]int{}
	h, err := Handler(d, keys, func(subject, reason string) { refused[subject+" "+reason]++ })
	if err != nil {
		t.Fatal(err)
	}
	return h, refused
}

func TestHandlerDecodesIntoDomainValues(t *testing.T) {
	t.Parallel()
	signer, keys := sealtest.NewKey(t)
	stored := at.Add(time.Second)
	tests := []struct {
		name    string
		subject string
		event   proto.Message
		stored  time.Time
		want    []any
	}{
		{
			name:    "request with its key, stored by the stream",
			subject: eventbus.SubjectRequested,
			event:   &eventsv1.PostRequested{PostId: "p1", DepartmentId: "d1", Text: "Hello", RequestedBy: "jo", RequestedAt: timestamppb.New(at), ApiKeyId: "k1"},
			stored:  stored,
			want:    []any{approval.Request{PostID: "p1", DepartmentID: "d1", Text: "Hello", RequestedBy: "jo", RequestedAt: at, APIKeyID: "k1", StoredAt: stored}},
		},
		{
			name:    "request",
			subject: eventbus.SubjectRequested,
			event:   &eventsv1.PostRequested{PostId: "p1", DepartmentId: "d1", Text: "Hello", RequestedBy: "jo", IdempotencyKey: "k", RequestedAt: timestamppb.New(at)},
			want:    []any{approval.Request{PostID: "p1", DepartmentID: "d1", Text: "Hello", RequestedBy: "jo", IdempotencyKey: "k", RequestedAt: at}},
		},
		{
			name:    "request without a time",
			subject: eventbus.SubjectRequested,
			event:   &eventsv1.PostRequested{PostId: "p1", DepartmentId: "d1", Text: "Hello"},
			want:    []any{approval.Request{PostID: "p1", DepartmentID: "d1", Text: "Hello"}},
		},
		{
			name:    "published",
			subject: eventbus.SubjectPublished,
			event:   sealedPublished(signer, &eventsv1.PostPublished{PostId: "p1", Channel: "x", RemoteId: "18", Url: "https://x.com/i/web/status/18", PublishedAt: timestamppb.New(at)}),
			want:    []any{"published", approval.PublisherReport{PostID: "p1", Channel: "x", RemoteID: "18", RemoteURL: "https://x.com/i/web/status/18", PublishedAt: at}},
		},
		{
			name:    "failed",
			subject: eventbus.SubjectFailed,
			event:   sealedFailed(signer, &eventsv1.PostFailed{PostId: "p1", Channel: "x", Reason: "duplicate", FailedAt: timestamppb.New(at)}),
			want:    []any{"failed", approval.PublisherReport{PostID: "p1", Channel: "x", Reason: "duplicate"}},
		},
		{
			name:    "unknown",
			subject: eventbus.SubjectUnknown,
			event:   sealedUnknown(signer, &eventsv1.PostUnknown{PostId: "p1", Channel: "x", Reason: "timeout", At: timestamppb.New(at)}),
			want:    []any{"unknown", approval.PublisherReport{PostID: "p1", Channel: "x", Reason: "timeout"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDomain{}
			h, _ := handler(t, d, keys)
			if err := h(context.Background(), msg{subject: tt.subject, data: encode(t, tt.event), stored: tt.stored}); err != nil {
				t.Fatalf("handler: %v", err)
			}
			if diff := cmp.Diff(tt.want, d.calls); diff != "" {
				t.Errorf("domain calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHandlerClassifiesErrors(t *testing.T) {
	t.Parallel()
	signer, keys := sealtest.NewKey(t)
	valid := encode(t, &eventsv1.PostRequested{PostId: "p1", DepartmentId: "d1", Text: "Hello"})
	tests := []struct {
		name          string
		subject       string
		data          []byte
		domainErr     error
		wantErr       bool
		wantPermanent bool
	}{
		{name: "handled", subject: eventbus.SubjectRequested, data: valid},
		{name: "payload that does not decode", subject: eventbus.SubjectRequested, data: []byte{0xff, 0xff}, wantErr: true, wantPermanent: true},
		{name: "subject nobody expects", subject: "herald.posts.cancelled", data: valid, wantErr: true, wantPermanent: true},
		{name: "domain says invalid", subject: eventbus.SubjectRequested, data: valid, domainErr: fmt.Errorf("submit: %w", approval.ErrInvalid), wantErr: true, wantPermanent: true},
		{name: "domain refuses the request's key", subject: eventbus.SubjectRequested, data: valid, domainErr: fmt.Errorf("submit: %w: %w", approval.ErrInvalid, approval.ErrKeyRefused), wantErr: true, wantPermanent: true},
		{name: "domain says not found", subject: eventbus.SubjectPublished, data: encode(t, sealedPublished(signer, &eventsv1.PostPublished{PostId: "p9", PublishedAt: timestamppb.New(at)})), domainErr: fmt.Errorf("record: %w", approval.ErrNotFound), wantErr: true, wantPermanent: true},
		{name: "database down: try again", subject: eventbus.SubjectRequested, data: valid, domainErr: errors.New("connection refused"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDomain{err: tt.domainErr}
			h, _ := handler(t, d, keys)
			err := h(context.Background(), msg{subject: tt.subject, data: tt.data})
			if (err != nil) != tt.wantErr || eventbus.IsPermanent(err) != tt.wantPermanent {
				t.Errorf("handler = %v (permanent %v); want error %v, permanent %v", err, eventbus.IsPermanent(err), tt.wantErr, tt.wantPermanent)
			}
			if tt.domainErr != nil && !errors.Is(err, tt.domainErr) {
				t.Errorf("handler = %v; the domain's error %v is lost", err, tt.domainErr)
			}
		})
	}
}

// TestHandlerRefusesForgedOutcomes: someone able to publish on NATS tries to mark a post published (with a
// URL of their choosing) or failed. Nothing reaches the domain, nothing is redelivered, and each refusal is
// counted with its reason.
func TestHandlerRefusesForgedOutcomes(t *testing.T) {
	t.Parallel()
	signer, keys := sealtest.NewKey(t)
	attacker, _ := sealtest.NewKey(t)
	genuine := func() *eventsv1.PostPublished {
		return sealedPublished(signer, &eventsv1.PostPublished{PostId: "p1", Channel: "x", RemoteId: "18", Url: "https://x.com/i/web/status/18", PublishedAt: timestamppb.New(at)})
	}
	failedSeal := sealedFailed(signer, &eventsv1.PostFailed{PostId: "p1", Channel: "x", FailedAt: timestamppb.New(at)}).Seal
	tests := []struct {
		name    string
		subject string
		event   proto.Message
		reason  string
	}{
		{"unsealed publication", eventbus.SubjectPublished, &eventsv1.PostPublished{PostId: "p1", Channel: "x", RemoteId: "666", Url: "https://evil.example", PublishedAt: timestamppb.New(at)}, "unsigned"},
		{"sealed by a key nobody trusts", eventbus.SubjectPublished, sealedPublished(attacker, &eventsv1.PostPublished{PostId: "p1", Channel: "x", RemoteId: "666", PublishedAt: timestamppb.New(at)}), "unknown_key"},
		{"genuine seal, other URL", eventbus.SubjectPublished, func() proto.Message { ev := genuine(); ev.Url = "https://evil.example"; return ev }(), "bad_signature"},
		{"genuine seal, other post", eventbus.SubjectPublished, func() proto.Message { ev := genuine(); ev.PostId = "p2"; return ev }(), "bad_signature"},
		{"a failure's seal replayed as a publication", eventbus.SubjectPublished, &eventsv1.PostPublished{PostId: "p1", Channel: "x", PublishedAt: timestamppb.New(at), Seal: failedSeal}, "bad_signature"},
		{"a publication replayed as a failure", eventbus.SubjectFailed, &eventsv1.PostFailed{PostId: "p1", Channel: "x", FailedAt: timestamppb.New(at), Seal: genuine().Seal}, "bad_signature"},
		{"unsealed unknown", eventbus.SubjectUnknown, &eventsv1.PostUnknown{PostId: "p1", Channel: "x", At: timestamppb.New(at)}, "unsigned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDomain{}
			h, refused := handler(t, d, keys)
			err := h(context.Background(), msg{subject: tt.subject, data: encode(t, tt.event)})
			if err == nil || !eventbus.IsPermanent(err) {
				t.Fatalf("handler = %v, want a permanent refusal", err)
			}
			if len(d.calls) != 0 {
				t.Errorf("the domain was called: %v", d.calls)
			}
			if want := map[string]int{tt.subject + " " + tt.reason: 1}; !cmp.Equal(refused, want) {
				t.Errorf("refusals counted %v, want %v", refused, want)
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

func TestAnnouncerBuildsEventsFromThePost(t *testing.T) {
	t.Parallel()
	signer, keys := sealtest.NewKey(t)
	p := approval.Post{
		ID: "p1", DepartmentID: "d1", Text: "Hello", RequestedBy: "jo", Status: approval.StatusApproved,
		Decision: approval.OutcomeApprove, DecidedBy: "comms@example.com", DecidedAt: at, Comment: "Lovely",
	}
	tests := []struct {
		name        string
		announce    func(*Announcer) error
		wantSubject string
		wantMsgID   string
		want        proto.Message
	}{
		{
			name:        "approved",
			announce:    func(a *Announcer) error { return a.PostApproved(context.Background(), p) },
			wantSubject: eventbus.SubjectApproved,
			wantMsgID:   "p1:approved",
			want: func() proto.Message {
				sum := seal.TextHash("Hello")
				s := signer.Sign(seal.Approval{PostID: "p1", DepartmentID: "d1", TextSHA256: sum, Approver: "comms@example.com", ApprovedAt: at})
				if err := keys.Verify(seal.Approval{PostID: "p1", DepartmentID: "d1", TextSHA256: seal.TextHash("Hello"), Approver: "comms@example.com", ApprovedAt: at}, s); err != nil {
					t.Fatal(err)
				}
				return &eventsv1.PostApproved{PostId: "p1", DepartmentId: "d1", Text: "Hello", ApprovedBy: "comms@example.com", ApprovedAt: timestamppb.New(at), Comment: "Lovely", TextSha256: sum[:], Seal: protoSeal(s)}
			}(),
		},
		{
			name:        "rejected",
			announce:    func(a *Announcer) error { return a.PostRejected(context.Background(), p) },
			wantSubject: eventbus.SubjectRejected,
			wantMsgID:   "p1:rejected",
			want:        &eventsv1.PostRejected{PostId: "p1", DepartmentId: "d1", RejectedBy: "comms@example.com", RejectedAt: timestamppb.New(at), Comment: "Lovely"},
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
			if err := tt.announce(a); err != nil {
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

func TestNewAnnouncerRejectsNil(t *testing.T) {
	t.Parallel()
	signer, keys := sealtest.NewKey(t)
	if _, err := NewAnnouncer(nil, signer); err == nil {
		t.Error("NewAnnouncer(nil, signer) succeeded")
	}
	if _, err := NewAnnouncer(&recorder{}, nil); err == nil {
		t.Error("NewAnnouncer without a signer succeeded: approvals would go out unsealed")
	}
	if _, err := Handler(&fakeDomain{}, nil, func(string, string) {}); err == nil {
		t.Error("Handler without a keyring succeeded: forged outcomes would be applied")
	}
	if _, err := Handler(&fakeDomain{}, keys, nil); err == nil {
		t.Error("Handler without a refusal counter succeeded")
	}
}

func TestGiveUpFailsRequestsAndCountsEverything(t *testing.T) {
	t.Parallel()
	requested := &eventsv1.PostRequested{PostId: "p1", DepartmentId: "d1", Text: "Hello", RequestedBy: "jo", RequestedAt: timestamppb.New(at)}
	cause := errors.New("the store refuses it")
	tests := []struct {
		name      string
		subject   string
		data      []byte
		domainErr error
		wantCalls []any
		wantErr   bool
	}{
		{
			name: "post request", subject: eventbus.SubjectRequested, data: encode(t, requested),
			wantCalls: []any{"fail", approval.Request{PostID: "p1", DepartmentID: "d1", Text: "Hello", RequestedBy: "jo", RequestedAt: at}, cause.Error()},
		},
		{
			name: "post request that cannot be recorded", subject: eventbus.SubjectRequested, data: encode(t, requested),
			domainErr: approval.ErrInvalid, wantErr: true,
			wantCalls: []any{"fail", approval.Request{PostID: "p1", DepartmentID: "d1", Text: "Hello", RequestedBy: "jo", RequestedAt: at}, cause.Error()},
		},
		{name: "post request that does not decode", subject: eventbus.SubjectRequested, data: []byte{0xff, 0xff}},
		{name: "outcome", subject: eventbus.SubjectPublished, data: encode(t, &eventsv1.PostPublished{PostId: "p1"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDomain{err: tt.domainErr}
			given := map[string]int{}
			hook, err := GiveUp(d, func(subject string) { given[subject]++ })
			if err != nil {
				t.Fatal(err)
			}
			err = hook(context.Background(), msg{subject: tt.subject, data: tt.data}, cause)
			if (err != nil) != tt.wantErr {
				t.Errorf("hook = %v; want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantCalls, d.calls); diff != "" {
				t.Errorf("domain calls (-want +got):\n%s", diff)
			}
			if given[tt.subject] != 1 {
				t.Errorf("given up = %v; want %s counted once", given, tt.subject)
			}
		})
	}
}

// corePublisher records core NATS publications.
type corePublisher struct {
	subject string
	data    []byte
}

func (p *corePublisher) Publish(subject string, data []byte) error {
	p.subject, p.data = subject, data
	return nil
}

func TestRevocationsAnnounceTheKeyOnTheCoreSubject(t *testing.T) {
	t.Parallel()
	pub := &corePublisher{}
	r, err := NewRevocations(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.KeyRevoked(context.Background(), approval.APIKey{ID: "k1", DepartmentID: "d1", RevokedAt: at, Hash: "secret hash"}); err != nil {
		t.Fatal(err)
	}
	if pub.subject != eventbus.SubjectKeysRevoked {
		t.Errorf("published on %q, want %q", pub.subject, eventbus.SubjectKeysRevoked)
	}
	var got eventsv1.KeyRevoked
	if err := proto.Unmarshal(pub.data, &got); err != nil {
		t.Fatal(err)
	}
	want := &eventsv1.KeyRevoked{KeyId: "k1", DepartmentId: "d1", RevokedAt: timestamppb.New(at)}
	if diff := cmp.Diff(want, &got, protocmp.Transform()); diff != "" {
		t.Errorf("announcement (-want +got):\n%s", diff)
	}
	if _, err := NewRevocations(nil); err == nil {
		t.Error("NewRevocations(nil) succeeded")
	}
}

// TestApprovedEventSealsThePictures: the PostApproved of a post with pictures names them in order and its
// seal covers their hashes, so a publisher checking the seal against other pictures refuses it.
func TestApprovedEventSealsThePictures(t *testing.T) {
	t.Parallel()
	signer, keys := sealtest.NewKey(t)
	pics := []approval.Media{
		{Name: "p1/0", SHA256: seal.TextHash("first"), ContentType: "image/png", Size: 5},
		{Name: "p1/1", SHA256: seal.TextHash("second"), ContentType: "image/jpeg", Size: 6},
	}
	p := approval.Post{ID: "p1", DepartmentID: "d1", Text: "Hello", Status: approval.StatusApproved, Decision: approval.OutcomeApprove,
		DecidedBy: "comms@example.com", DecidedAt: at, Media: pics}
	rec := &recorder{}
	a, err := NewAnnouncer(rec, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PostApproved(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	ev := rec.event.(*eventsv1.PostApproved)
	want := []*eventsv1.MediaRef{
		{ObjectName: "p1/0", Sha256: pics[0].SHA256[:], ContentType: "image/png", Size: 5},
		{ObjectName: "p1/1", Sha256: pics[1].SHA256[:], ContentType: "image/jpeg", Size: 6},
	}
	if diff := cmp.Diff(want, ev.GetMedia(), protocmp.Transform()); diff != "" {
		t.Errorf("media (-want +got):\n%s", diff)
	}
	s := seal.Seal{KeyID: ev.GetSeal().GetKeyId(), Signature: ev.GetSeal().GetSignature()}
	stmt := seal.Approval{PostID: "p1", DepartmentID: "d1", TextSHA256: seal.TextHash("Hello"), Approver: "comms@example.com", ApprovedAt: at,
		MediaSHA256: [][32]byte{pics[0].SHA256, pics[1].SHA256}}
	if err := keys.Verify(stmt, s); err != nil {
		t.Fatalf("the seal does not cover the pictures: %v", err)
	}
	for name, other := range map[string][][32]byte{
		"no pictures":       nil,
		"swapped order":     {pics[1].SHA256, pics[0].SHA256},
		"another picture":   {pics[0].SHA256, seal.TextHash("forged")},
		"one picture fewer": {pics[0].SHA256},
	} {
		forged := stmt
		forged.MediaSHA256 = other
		if err := keys.Verify(forged, s); err == nil {
			t.Errorf("the seal verifies with %s", name)
		}
	}
}
