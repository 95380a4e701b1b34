package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/heraldshared/requestid"
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

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e retryAfterError) Error() string { return e.err.Error() }
func (e retryAfterError) Unwrap() error { return e.err }

// RetryAfter asks for redelivery no sooner than after (a rate limit's reset, say).
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return retryAfterError{err, after}
}

// RetryDelay returns the delay err asks for, and whether it was marked with RetryAfter at all.
func RetryDelay(err error) (time.Duration, bool) {
	var ra retryAfterError
	if errors.As(err, &ra) {
		return ra.after, true
	}
	return 0, false
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
	// Stream is the stream the consumer reads; empty means Stream.
	Stream string
	// HandlerTimeout bounds one message's handling; it is also the ack wait.
	HandlerTimeout time.Duration
	// MaxDeliveries bounds how often a message is delivered: a message whose handler still fails on its
	// last delivery is given up (see GiveUp) rather than redelivered forever. Zero means
	// DefaultMaxDeliveries; with the growing delay between deliveries, that many span about six minutes.
	MaxDeliveries int
	// GiveUp, if set, is called once for a message that will not be delivered again although its handler
	// did not succeed: the handler failed permanently, or failed on the last delivery MaxDeliveries
	// allows. cause is the handler's error. It is the place to record the failure where the sender sees
	// it, in a way that cannot meet the same failure. Its error is logged; the message is terminated
	// either way.
	GiveUp func(ctx context.Context, msg jetstream.Msg, cause error) error
}

// DefaultMaxDeliveries is how many times a message is delivered when ConsumerConfig.MaxDeliveries is zero.
const DefaultMaxDeliveries = 10

// Consume runs h on every message of the durable consumer until ctx ends, then stops taking messages and
// waits for the ones in hand. Messages are acknowledged only after h returns nil.
//
// Each subject gets its own durable consumer, named Durable-<last subject token>: NATS servers before 2.10
// (Debian's among them) refuse a consumer with several filter subjects.
func Consume(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, h Handler, log *slog.Logger) error {
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = 30 * time.Second
	}
	if cfg.MaxDeliveries <= 0 {
		cfg.MaxDeliveries = DefaultMaxDeliveries
	}
	var running []jetstream.ConsumeContext
	stopAll := func() {
		for _, cc := range running {
			if js.Conn().IsConnected() {
				cc.Drain()
			} else {
				cc.Stop() // nothing to drain through a dead connection
			}
		}
		deadline := time.After(cfg.HandlerTimeout)
		for _, cc := range running {
			select {
			case <-cc.Closed():
			case <-deadline:
				log.Warn("consumer did not drain in time", "consumer", cfg.Durable)
				return
			}
		}
	}
	for _, subject := range cfg.Subjects {
		name := ConsumerName(cfg.Durable, subject)
		cons, err := js.CreateOrUpdateConsumer(ctx, streamName(cfg.Stream), jetstream.ConsumerConfig{
			Durable:       name,
			FilterSubject: subject,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.HandlerTimeout + 5*time.Second,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			MaxDeliver:    cfg.MaxDeliveries,
			MaxAckPending: 256,
		})
		if err != nil {
			stopAll()
			if ctx.Err() != nil {
				return nil // stopped while starting, which is no failure
			}
			return fmt.Errorf("consumer %s: %w", name, err)
		}
		cc, err := cons.Consume(func(msg jetstream.Msg) {
			handle(ctx, name, cfg, msg, h, log)
		})
		if err != nil {
			stopAll()
			return fmt.Errorf("consume %s: %w", name, err)
		}
		running = append(running, cc)
	}
	<-ctx.Done()
	stopAll()
	return nil
}

func handle(parent context.Context, consumer string, cfg ConsumerConfig, msg jetstream.Msg, h Handler, log *slog.Logger) {
	// The handler gets its own deadline rather than parent: a message already taken is finished during a
	// graceful stop instead of being abandoned half-way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cfg.HandlerTimeout)
	defer cancel()
	meta, _ := msg.Metadata()
	delivered := uint64(1)
	if meta != nil {
		delivered = meta.NumDelivered
	}
	l := log.With("consumer", consumer, "subject", msg.Subject(), "msg_id", msg.Headers().Get("Nats-Msg-Id"), "delivered", delivered)
	if id := msg.Headers().Get(requestid.BusHeader); id != "" {
		ctx = requestid.WithID(ctx, id)
		l = l.With("request_id", id)
	}
	err := h(ctx, msg)
	switch {
	case err == nil:
		if err := msg.Ack(); err != nil {
			l.Warn("ack failed; the message will be redelivered", "err", err)
			return
		}
		l.Debug("message handled")
	case IsPermanent(err):
		l.Error("message dropped: it can never be handled", "err", err)
		giveUp(ctx, cfg, msg, err, l)
	case delivered >= uint64(cfg.MaxDeliveries):
		l.Error("message given up: its last allowed delivery failed too", "err", err, "max_deliveries", cfg.MaxDeliveries)
		giveUp(ctx, cfg, msg, err, l)
	default:
		delay := redeliveryDelay(delivered)
		if after, ok := RetryDelay(err); ok && after > delay {
			delay = after
		}
		l.Warn("message handling failed; will retry", "err", err, "retry_in", delay)
		_ = msg.NakWithDelay(delay)
	}
}

// giveUp hands a message that will not be delivered again to the GiveUp hook, then terminates it: the
// server then neither redelivers it nor waits for its ack.
func giveUp(ctx context.Context, cfg ConsumerConfig, msg jetstream.Msg, cause error, l *slog.Logger) {
	if cfg.GiveUp != nil {
		// A fresh deadline: the handler may have failed by running out of its own.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HandlerTimeout)
		defer cancel()
		if err := cfg.GiveUp(ctx, msg, cause); err != nil {
			l.Error("recording a message given up failed", "err", err, "cause", cause)
		}
	}
	// Term, not TermWithReason: NATS servers before 2.10 (Debian's among them) do not know the reason form
	// and ignore it, leaving the message to be redelivered once the ack wait runs out. The log has the
	// reason.
	_ = msg.Term()
}

// redeliveryDelay grows with each delivery: 1s, 2s, 4s ... capped at two minutes.
func redeliveryDelay(delivered uint64) time.Duration {
	d := time.Second
	for i := uint64(1); i < delivered && d < 2*time.Minute; i++ {
		d *= 2
	}
	return min(d, 2*time.Minute)
}
