// Package eventbus is Herald's contract with NATS JetStream: the stream that carries every post event, its
// subjects, and how events are published so that a republished event is deduplicated. The gateway, the
// approval service and the publisher all use it, so the stream is defined in exactly one place.
package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/heraldhq/herald/services/heraldshared/requestid"
)

// Stream is the default name of the JetStream stream that holds every post event. WithStream names
// another (HERALD_STREAM), for a NATS server where that name is taken.
const Stream = "HERALD_POSTS"

// Option changes how Connect and NewPublisher use the stream.
type Option func(*options)

type options struct {
	stream     string
	service    Service
	nats       []nats.Option
	durability Durability
	log        *slog.Logger
}

// AsService connects as one of Herald's services: replies come to the service's own inbox prefix (its
// NATS user may subscribe to nothing else), and only a service that manages the stream creates or updates
// it; the others wait for it to exist. Without AsService, Connect manages the stream itself, as tests and
// tools with full rights do.
func AsService(s Service) Option {
	return func(o *options) { o.service = s }
}

// WithNATSOptions adds options to the NATS connection: credentials and TLS (see svcconfig.NATS).
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) { o.nats = append(o.nats, opts...) }
}

// WithStream names the stream; an empty name keeps Stream.
func WithStream(name string) Option {
	return func(o *options) { o.stream = streamName(name) }
}

func resolve(opts []Option) options {
	o := options{stream: Stream, durability: DefaultDurability()}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// streamName is name, or Stream when name is empty: every configuration may leave it unset.
func streamName(name string) string {
	if name == "" {
		return Stream
	}
	return name
}

// Subjects of the post events. Payloads are the messages of proto/herald/events/v1 with the same name.
const (
	SubjectRequested = "herald.posts.requested"
	SubjectApproved  = "herald.posts.approved"
	SubjectRejected  = "herald.posts.rejected"
	SubjectPublished = "herald.posts.published"
	SubjectFailed    = "herald.posts.failed"
	SubjectUnknown   = "herald.posts.unknown"
	SubjectExpired   = "herald.posts.expired"
	SubjectCancelled = "herald.posts.cancelled"
)

// DedupeWindow is how long JetStream remembers a Nats-Msg-Id unless HERALD_STREAM_DUPLICATE_WINDOW says
// otherwise. Consumers are idempotent beyond it anyway; the window only spares them most of the duplicate
// work.
const DedupeWindow = time.Hour

// streamMaxAge is how long the stream keeps an event.
const streamMaxAge = 30 * 24 * time.Hour

// StreamConfig is the configuration of the stream named name (Stream when empty), with
// DefaultDurability.
func StreamConfig(name string) jetstream.StreamConfig {
	return DefaultDurability().Stream(name)
}

// Stream is the configuration of the stream named name (Stream when empty) with this durability.
func (d Durability) Stream(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        streamName(name),
		Description: "Herald post requests and their outcomes",
		Subjects:    []string{"herald.posts.>"},
		Storage:     d.Storage,
		Replicas:    d.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      streamMaxAge,
		Duplicates:  d.DuplicateWindow,
	}
}

// IdempotencyTTL is how long the gateway remembers an Idempotency-Key: Stripe's 24 hours, and longer
// than DedupeWindow, so that a key is never forgotten while JetStream could still drop its retry as a
// duplicate. Past it, a key still names the same post (its id is derived from it), but a different body is
// no longer recognised before the approval service is asked.
const IdempotencyTTL = 24 * time.Hour

// IdempotencyBucket is the name of the key-value bucket in which gateways claim Idempotency-Keys, one per
// stream (Stream when empty) so that two Heralds on one server keep theirs apart.
func IdempotencyBucket(stream string) string { return streamName(stream) + "_IDEMPOTENCY" }

// IdempotencyBucketConfig is the configuration of the idempotency bucket of stream, with
// DefaultDurability. One revision per key is enough: a claim is compared and swapped, never read back in
// history.
func IdempotencyBucketConfig(stream string) jetstream.KeyValueConfig {
	return DefaultDurability().IdempotencyBucket(stream)
}

// IdempotencyBucket is the configuration of the idempotency bucket of stream with this durability.
func (d Durability) IdempotencyBucket(stream string) jetstream.KeyValueConfig {
	return d.KeyValue(jetstream.KeyValueConfig{
		Bucket:      IdempotencyBucket(stream),
		Description: "Herald gateways' Idempotency-Key claims",
		History:     1,
		TTL:         IdempotencyTTL,
	})
}

// RateBucket is the name of the key-value bucket in which publisher replicas share each channel
// account's rate-limit window, one per stream (Stream when empty).
func RateBucket(stream string) string { return streamName(stream) + "_RATE" }

// RateBucket is the configuration of the rate bucket of stream with this durability. One revision per
// key: a window is compared and swapped, never read back in history; no TTL, since a window carries its
// own reset time.
func (d Durability) RateBucket(stream string) jetstream.KeyValueConfig {
	return d.KeyValue(jetstream.KeyValueConfig{
		Bucket:      RateBucket(stream),
		Description: "Herald publishers' shared rate-limit windows, per channel account",
		History:     1,
	})
}

// MediaBucket is the name of the object store bucket that holds the pictures of post requests, one per
// stream (Stream when empty). The gateway puts them, the publisher and the approval service read them,
// and only the approval service deletes them (its retention sweep; see package media).
func MediaBucket(stream string) string { return streamName(stream) + "_MEDIA" }

// MediaBucketConfig is the configuration of the media bucket of stream. No time to live: a bucket TTL
// would delete the pictures of a post still waiting for its approvers (or for ops to settle it), so the
// approval service, which knows each post's state, deletes them instead.
func MediaBucketConfig(stream string) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      MediaBucket(stream),
		Description: "Herald post requests' pictures",
		Storage:     jetstream.FileStorage,
	}
}

// ErrUnavailable is returned when JetStream could not be reached or did not acknowledge a message in time.
// Callers must not tell anyone the message was accepted.
var ErrUnavailable = errors.New("event bus unavailable")

// Connect dials NATS and returns a connection and its JetStream context, with the stream (Stream, or the
// one WithStream names) created or updated, or, for a service that does not manage it, known to exist.
// name identifies the client in the server's monitoring.
func Connect(ctx context.Context, url, name string, opts ...Option) (*nats.Conn, jetstream.JetStream, error) {
	o := resolve(opts)
	if err := o.durability.Validate(); err != nil {
		return nil, nil, err
	}
	natsOpts := append([]nats.Option{
		nats.Name(name),
		// Longer than nats.go's 2 s: a loaded machine (CI running the race detector) is slow to handshake.
		nats.Timeout(10 * time.Second),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(false),
	}, o.nats...)
	if o.service != "" {
		natsOpts = append(natsOpts, nats.CustomInboxPrefix(o.service.InboxPrefix()))
	}
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats at %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	log := orDiscard(o.log)
	if o.service == "" || o.service.ManagesStream() {
		err = ensureStream(ctx, js, o.stream, o.durability, log)
	} else if err = awaitStream(ctx, js, o.stream, 30*time.Second); err == nil {
		checkStream(ctx, js, o.durability.Stream(o.stream), log)
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// ensureStream creates the idempotency bucket and the stream, or brings existing ones to the configured
// durability (see EnsureStream). Updating only when something differs matters: an unconditional update at
// every start raced with other services creating consumers (which nats-server v2.15's race detector
// flags).
func ensureStream(ctx context.Context, js jetstream.JetStream, stream string, d Durability, log *slog.Logger) error {
	// The bucket first: a gateway starts once it sees the stream, and then expects the bucket too.
	if err := EnsureKeyValue(ctx, js, d.IdempotencyBucket(stream), log); err != nil {
		return err
	}
	if err := EnsureKeyValue(ctx, js, d.RateBucket(stream), log); err != nil {
		return err
	}
	if err := EnsureObjectStore(ctx, js, d.ObjectStore(MediaBucketConfig(stream)), log); err != nil {
		return err
	}
	return EnsureStream(ctx, js, d.Stream(stream), log)
}

// awaitStream waits up to limit for the stream to exist: services that may not create it start after
// (or beside) the approval service, which does.
func awaitStream(ctx context.Context, js jetstream.JetStream, stream string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		_, err := js.Stream(ctx, stream)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s: %w", stream, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s does not exist after %s: the approval service creates it; is it running against this NATS?", stream, limit)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Publisher publishes protobuf events with a message id, waiting for JetStream's acknowledgement.
type Publisher struct {
	js      jetstream.JetStream
	timeout time.Duration
	stream  string
}

// NewPublisher returns a Publisher that gives JetStream at most timeout to acknowledge each message, and
// expects the stream Connect was given (Stream unless WithStream says otherwise).
func NewPublisher(js jetstream.JetStream, timeout time.Duration, opts ...Option) (*Publisher, error) {
	if js == nil {
		return nil, errors.New("eventbus: nil JetStream")
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Publisher{js: js, timeout: timeout, stream: resolve(opts).stream}, nil
}

// PublishProto marshals m and publishes it like Publish.
func (p *Publisher) PublishProto(ctx context.Context, subject, msgID string, m proto.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", subject, err)
	}
	return p.Publish(ctx, subject, msgID, data)
}

// Publish sends data on subject with msgID as Nats-Msg-Id and returns once the stream stored it. A message
// published again with the same msgID within DedupeWindow is stored once.
func (p *Publisher) Publish(ctx context.Context, subject, msgID string, data []byte) error {
	if !p.js.Conn().IsConnected() {
		// nats.go would buffer the message until it reconnects; the caller needs an answer now.
		return fmt.Errorf("publish %s %s: %w: not connected to NATS", subject, msgID, ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	if id := requestid.FromContext(ctx); id != "" {
		msg.Header.Set(requestid.BusHeader, id)
	}
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(p.stream)); err != nil {
		return fmt.Errorf("publish %s %s: %w: %w", subject, msgID, ErrUnavailable, err)
	}
	return nil
}

// MsgID is the Nats-Msg-Id of the event of kind for a post: one per post and kind, so every republication
// of the same event is deduplicated.
func MsgID(postID, kind string) string {
	return postID + ":" + kind
}
