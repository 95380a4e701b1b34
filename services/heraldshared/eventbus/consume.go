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
	return consume(ctx, js, cfg, log, func(name string, cfg ConsumerConfig) (jetstream.MessageHandler, func(time.Duration) bool) {
		return func(msg jetstream.Msg) { handle(ctx, name, cfg, msg, h, log) }, func(time.Duration) bool { return true }
	})
}

// BatchHandler processes several messages at once and returns an error for each, in order, meaning what
// Handler's error means for its message. The batch shares one HandlerTimeout.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) []error

// ConsumeBatches is Consume for a handler that takes messages in batches of up to maxBatch: the messages
// that arrived while the previous batch was being handled. A lone message is handled at once, without
// waiting for company, so batching costs no latency: batches grow only when messages come faster than
// they are handled. Each message is settled on its own after h returns (acknowledged, redelivered later
// or given up), so a message that fails does not take the rest of its batch with it.
func ConsumeBatches(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, maxBatch int, h BatchHandler, log *slog.Logger) error {
	if maxBatch <= 0 {
		return errors.New("eventbus: batch size must be positive")
	}
	return consume(ctx, js, cfg, log, func(name string, cfg ConsumerConfig) (jetstream.MessageHandler, func(time.Duration) bool) {
		return batcher(ctx, name, cfg, maxBatch, h, log)
	})
}

// batcher returns the message callback that queues messages for one goroutine handling them in batches,
// and the function that, once no more messages come, lets that goroutine finish the queue and waits for
// it (up to wait; false if it is still busy then).
func batcher(ctx context.Context, name string, cfg ConsumerConfig, maxBatch int, h BatchHandler, log *slog.Logger) (jetstream.MessageHandler, func(time.Duration) bool) {
	queue := make(chan jetstream.Msg, maxBatch)
	quit, done := make(chan struct{}), make(chan struct{})
	take := func(batch []jetstream.Msg) []jetstream.Msg {
		for len(batch) < maxBatch {
			select {
			case msg := <-queue:
				batch = append(batch, msg)
			default:
				return batch
			}
		}
		return batch
	}
	go func() {
		defer close(done)
		for {
			select {
			case msg := <-queue:
				handleBatch(ctx, name, cfg, take([]jetstream.Msg{msg}), h, log)
			case <-quit:
				for batch := take(nil); len(batch) > 0; batch = take(nil) {
					handleBatch(ctx, name, cfg, batch, h, log)
				}
				return
			}
		}
	}()
	deliver := func(msg jetstream.Msg) {
		select {
		case queue <- msg:
		case <-quit: // stopping without a drain: unacknowledged, the message is redelivered later
		}
	}
	finish := func(wait time.Duration) bool {
		close(quit)
		select {
		case <-done:
			return true
		case <-time.After(wait):
			return false
		}
	}
	return deliver, finish
}

// consume creates the durable consumers and runs the callbacks newHandler makes for each until ctx ends.
// The second function newHandler returns is called once its consumer delivers no more, to finish what
// was handed over and not handled yet, within the time it is given.
func consume(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, log *slog.Logger, newHandler func(name string, cfg ConsumerConfig) (jetstream.MessageHandler, func(time.Duration) bool)) error {
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = 30 * time.Second
	}
	if cfg.MaxDeliveries <= 0 {
		cfg.MaxDeliveries = DefaultMaxDeliveries
	}
	var running []jetstream.ConsumeContext
	var finishers []func(time.Duration) bool
	stopAll := func() {
		for _, cc := range running {
			if js.Conn().IsConnected() {
				cc.Drain()
			} else {
				cc.Stop() // nothing to drain through a dead connection
			}
		}
		deadline := time.Now().Add(cfg.HandlerTimeout)
		for _, cc := range running {
			select {
			case <-cc.Closed():
			case <-time.After(time.Until(deadline)):
				log.Warn("consumer did not drain in time", "consumer", cfg.Durable)
			}
		}
		for _, finish := range finishers {
			if !finish(max(time.Until(deadline), 0)) {
				log.Warn("consumer did not finish its messages in time", "consumer", cfg.Durable)
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
		h, finish := newHandler(name, cfg)
		cc, err := cons.Consume(h)
		if err != nil {
			finish(0)
			stopAll()
			return fmt.Errorf("consume %s: %w", name, err)
		}
		running = append(running, cc)
		finishers = append(finishers, finish)
	}
	<-ctx.Done()
	stopAll()
	return nil
}

// handleBatch runs h on a batch and settles each message by its result.
func handleBatch(parent context.Context, consumer string, cfg ConsumerConfig, msgs []jetstream.Msg, h BatchHandler, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cfg.HandlerTimeout)
	defer cancel()
	errs := h(ctx, msgs)
	if len(errs) != len(msgs) {
		err := fmt.Errorf("batch handler returned %d results for %d messages", len(errs), len(msgs))
		errs = make([]error, len(msgs))
		for i := range errs {
			errs[i] = err
		}
	}
	log.Debug("batch handled", "consumer", consumer, "messages", len(msgs))
	for i, msg := range msgs {
		mctx, l, delivered := messageContext(ctx, consumer, msg, log)
		settle(mctx, cfg, msg, errs[i], delivered, l)
	}
}

func handle(parent context.Context, consumer string, cfg ConsumerConfig, msg jetstream.Msg, h Handler, log *slog.Logger) {
	// The handler gets its own deadline rather than parent: a message already taken is finished during a
	// graceful stop instead of being abandoned half-way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cfg.HandlerTimeout)
	defer cancel()
	ctx, l, delivered := messageContext(ctx, consumer, msg, log)
	settle(ctx, cfg, msg, h(ctx, msg), delivered, l)
}

// messageContext returns ctx with msg's request id, a logger that names msg, and how often msg was
// delivered.
func messageContext(ctx context.Context, consumer string, msg jetstream.Msg, log *slog.Logger) (context.Context, *slog.Logger, uint64) {
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
	return ctx, l, delivered
}

// settle acknowledges msg, asks for its redelivery, or gives it up, by its handler's result err.
func settle(ctx context.Context, cfg ConsumerConfig, msg jetstream.Msg, err error, delivered uint64, l *slog.Logger) {
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
