package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Handler processes one message. Returning nil acknowledges it; an error made with Permanent terminates it
// (it will never succeed, so it is not redelivered); any other error asks for redelivery after a delay.
// Handlers must be idempotent: a message can arrive more than once.
type Handler func(ctx context.Context, msg jetstream.Msg) error

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that redelivery cannot fix (a malformed payload, say).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// ConsumerConfig names a durable consumer and what it reads.
type ConsumerConfig struct {
	// Durable is the consumer's name; it survives restarts, so nothing published meanwhile is missed.
	Durable  string
	Subjects []string
	// HandlerTimeout bounds one message's handling; it is also the ack wait.
	HandlerTimeout time.Duration
}

// Consume runs h on every message of the durable consumer until ctx ends, then stops taking messages and
// waits for the ones in hand. Messages are acknowledged only after h returns nil.
func Consume(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, h Handler, log *slog.Logger) error {
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = 30 * time.Second
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, Stream, jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		FilterSubjects: cfg.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.HandlerTimeout + 5*time.Second,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		MaxDeliver:     -1,
		MaxAckPending:  256,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		handle(ctx, cfg, msg, h, log)
	})
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	<-ctx.Done()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(cfg.HandlerTimeout):
		log.Warn("consumer did not drain in time", "consumer", cfg.Durable)
	}
	return nil
}

func handle(parent context.Context, cfg ConsumerConfig, msg jetstream.Msg, h Handler, log *slog.Logger) {
	// The handler gets its own deadline rather than parent: a message already taken is finished during a
	// graceful stop instead of being abandoned half-way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cfg.HandlerTimeout)
	defer cancel()
	meta, _ := msg.Metadata()
	delivered := uint64(1)
	if meta != nil {
		delivered = meta.NumDelivered
	}
	l := log.With("consumer", cfg.Durable, "subject", msg.Subject(), "msg_id", msg.Headers().Get("Nats-Msg-Id"), "delivered", delivered)
	err := h(ctx, msg)
	switch {
	case err == nil:
		if err := msg.Ack(); err != nil {
			l.Warn("ack failed; the message will be redelivered", "err", err)
		}
	case IsPermanent(err):
		l.Error("message dropped: it can never be handled", "err", err)
		_ = msg.TermWithReason(err.Error())
	default:
		delay := redeliveryDelay(delivered)
		l.Warn("message handling failed; will retry", "err", err, "retry_in", delay)
		_ = msg.NakWithDelay(delay)
	}
}

// redeliveryDelay grows with each delivery: 1s, 2s, 4s ... capped at two minutes.
func redeliveryDelay(delivered uint64) time.Duration {
	d := time.Second
	for i := uint64(1); i < delivered && d < 2*time.Minute; i++ {
		d *= 2
	}
	return min(d, 2*time.Minute)
}
