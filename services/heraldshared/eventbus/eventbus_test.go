package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

// servers runs each case against an embedded NATS server and against the machine's own.
func servers(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("embedded", func(t *testing.T) { fn(t, natstest.Embedded(t)) })
	t.Run("local", func(t *testing.T) { fn(t, natstest.Local(t)) })
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, js, err := eventbus.Connect(context.Background(), url, "eventbus-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return js
}

// subjectFor gives each test run its own subject under the stream, so runs against a shared server do
// not see each other's messages.
func subjectFor(t *testing.T) string {
	return "herald.posts.test" + uuid.NewString()[:8]
}

func TestPublishDeduplicatesByMessageID(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		js := connect(t, url)
		pub, err := eventbus.NewPublisher(js, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		subject, id := subjectFor(t), uuid.NewString()
		for range 3 {
			if err := pub.Publish(context.Background(), subject, eventbus.MsgID(id, "requested"), []byte("payload")); err != nil {
				t.Fatal(err)
			}
		}
		stream, err := js.Stream(context.Background(), eventbus.Stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := stream.Info(context.Background(), jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		if n := info.State.Subjects[subject]; n != 1 {
			t.Errorf("stream holds %d messages for three publications with one id, want 1", n)
		}
	})
}

func TestConsumeRedeliversFailuresAndDropsPermanentOnes(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		js := connect(t, url)
		pub, _ := eventbus.NewPublisher(js, 5*time.Second)
		subject := subjectFor(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		var mu sync.Mutex
		seen := map[string]int{}
		done := make(chan struct{})
		handler := func(_ context.Context, msg jetstream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			body := string(msg.Data())
			seen[body]++
			switch {
			case body == "flaky" && seen[body] == 1:
				return errors.New("database briefly down")
			case body == "poison":
				return eventbus.Permanent(errors.New("cannot decode"))
			}
			if seen["flaky"] == 2 && seen["fine"] == 1 {
				close(done)
			}
			return nil
		}
		durable := "test-" + uuid.NewString()[:8]
		errc := make(chan error, 1)
		go func() {
			errc <- eventbus.Consume(ctx, js, eventbus.ConsumerConfig{Durable: durable, Subjects: []string{subject}, HandlerTimeout: 5 * time.Second}, handler, slog.New(slog.DiscardHandler))
		}()
		for i, body := range []string{"poison", "flaky", "fine"} {
			if err := pub.Publish(ctx, subject, uuid.NewString()+string(rune('a'+i)), []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatalf("messages not handled in time: %v", seen)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if seen["poison"] != 1 || seen["flaky"] != 2 || seen["fine"] != 1 {
			t.Errorf("deliveries = %v; want poison once, flaky twice, fine once", seen)
		}
		_ = js.DeleteConsumer(context.Background(), eventbus.Stream, durable+"-"+subject[len("herald.posts."):])
	})
}

// TestConsumeGivesUpAfterMaxDeliveries shows a message that always fails delivered MaxDeliveries times,
// then handed to GiveUp once and terminated: nothing of it is left pending on the consumer.
func TestConsumeGivesUpAfterMaxDeliveries(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		js := connect(t, url)
		pub, _ := eventbus.NewPublisher(js, 5*time.Second)
		subject := subjectFor(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		type gaveUp struct {
			body, cause string
			deliveries  int
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var given []gaveUp
		done := make(chan struct{})
		handler := func(_ context.Context, msg jetstream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			seen[string(msg.Data())]++
			if string(msg.Data()) == "poison" {
				return eventbus.Permanent(errors.New("cannot decode"))
			}
			return errors.New("the store refuses it")
		}
		giveUp := func(_ context.Context, msg jetstream.Msg, cause error) error {
			mu.Lock()
			defer mu.Unlock()
			given = append(given, gaveUp{string(msg.Data()), cause.Error(), seen[string(msg.Data())]})
			if len(given) == 2 {
				close(done)
			}
			return nil
		}
		durable := "test-" + uuid.NewString()[:8]
		cfg := eventbus.ConsumerConfig{Durable: durable, Subjects: []string{subject}, HandlerTimeout: 5 * time.Second, MaxDeliveries: 3, GiveUp: giveUp}
		errc := make(chan error, 1)
		go func() { errc <- eventbus.Consume(ctx, js, cfg, handler, slog.New(slog.DiscardHandler)) }()
		for _, body := range []string{"poison", "doomed"} {
			if err := pub.Publish(ctx, subject, uuid.NewString(), []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("not given up in time: deliveries %v, given up %v", seen, given)
		}
		name := eventbus.ConsumerName(durable, subject)
		cons, err := js.Consumer(ctx, eventbus.Stream, name)
		if err != nil {
			t.Fatal(err)
		}
		// Terminated messages are acknowledged as far as the server is concerned: poll until it says so.
		deadline := time.Now().Add(10 * time.Second)
		for {
			info, err := cons.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Config.MaxDeliver != 3 {
				t.Errorf("consumer MaxDeliver = %d, want 3", info.Config.MaxDeliver)
			}
			if info.NumAckPending == 0 && info.NumPending == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("messages still pending after being given up: %+v", info)
			}
			runtime.Gosched()
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		want := []gaveUp{{"poison", "cannot decode", 1}, {"doomed", "the store refuses it", 3}}
		if diff := cmp.Diff(want, given, cmp.AllowUnexported(gaveUp{}), cmpopts.SortSlices(func(a, b gaveUp) bool { return a.body < b.body })); diff != "" {
			t.Errorf("given up (-want +got):\n%s", diff)
		}
		if seen["doomed"] != 3 {
			t.Errorf("doomed delivered %d times, want 3", seen["doomed"])
		}
		_ = js.DeleteConsumer(context.Background(), eventbus.Stream, name)
	})
}

func TestPublishFailsFastWithoutNATS(t *testing.T) {
	url := natstest.Embedded(t)
	nc, js, err := eventbus.Connect(context.Background(), url, "eventbus-test")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := eventbus.NewPublisher(js, 5*time.Second)
	nc.Close()
	start := time.Now()
	err = pub.Publish(context.Background(), eventbus.SubjectRequested, "x", []byte("y"))
	if !errors.Is(err, eventbus.ErrUnavailable) {
		t.Fatalf("Publish on a closed connection = %v, want ErrUnavailable", err)
	}
	// Not a performance bound: the publisher's timeout is 5s, and a buffered publish would wait all of it.
	if d := time.Since(start); d >= 4*time.Second {
		t.Errorf("Publish took %v to fail: it waited for the timeout instead of failing at once", d)
	}
}

func TestErrorMarks(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
		wantDelay     time.Duration
		wantRetry     bool
	}{
		{name: "plain", err: base},
		{name: "permanent", err: fmt.Errorf("wrapped: %w", eventbus.Permanent(base)), wantPermanent: true},
		{name: "retry after", err: fmt.Errorf("wrapped: %w", eventbus.RetryAfter(base, time.Minute)), wantDelay: time.Minute, wantRetry: true},
		{name: "retry with no delay", err: eventbus.RetryAfter(base, 0), wantRetry: true},
	}
	for _, tt := range tests {
		if got := eventbus.IsPermanent(tt.err); got != tt.wantPermanent {
			t.Errorf("%s: IsPermanent = %v, want %v", tt.name, got, tt.wantPermanent)
		}
		if d, ok := eventbus.RetryDelay(tt.err); d != tt.wantDelay || ok != tt.wantRetry {
			t.Errorf("%s: RetryDelay = %s, %v; want %s, %v", tt.name, d, ok, tt.wantDelay, tt.wantRetry)
		}
		if !errors.Is(tt.err, base) {
			t.Errorf("%s: the marked error no longer wraps the original", tt.name)
		}
	}
}

// A named stream (HERALD_STREAM) is the one created, published to and consumed from: an embedded server
// only, since the machine's server already has HERALD_POSTS claiming the same subjects.
func TestNamedStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const name = "HERALD_POSTS_NAMED"
	nc, js, err := eventbus.Connect(ctx, natstest.Embedded(t), "eventbus-test", eventbus.WithStream(name))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pub, err := eventbus.NewPublisher(js, 5*time.Second, eventbus.WithStream(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, eventbus.SubjectRequested, uuid.NewString(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctx, eventbus.Stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("default stream lookup = %v, want ErrStreamNotFound", err)
	}
	got := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		cfg := eventbus.ConsumerConfig{Durable: "named", Subjects: []string{eventbus.SubjectRequested}, Stream: name}
		errc <- eventbus.Consume(ctx, js, cfg, func(_ context.Context, msg jetstream.Msg) error {
			select {
			case got <- string(msg.Data()):
			default:
			}
			return nil
		}, slog.New(slog.DiscardHandler))
	}()
	select {
	case body := <-got:
		if body != "hello" {
			t.Errorf("consumed %q, want hello", body)
		}
	case err := <-errc:
		t.Fatalf("consume: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("nothing consumed from the named stream")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestConsumeBatchesSettlesEachMessage publishes messages while the first batch is held up: the rest
// arrive in batches of at most the limit, each message is handled once, a poison message in a batch is
// given up alone, and every other message of its batch is acknowledged (nothing is redelivered).
func TestConsumeBatchesSettlesEachMessage(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		js := connect(t, url)
		pub, _ := eventbus.NewPublisher(js, 5*time.Second)
		subject := subjectFor(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		const n, maxBatch = 40, 8
		var mu sync.Mutex
		seen := map[string]int{}
		var batches []int
		var given []string
		release := make(chan struct{})
		handler := func(_ context.Context, msgs []jetstream.Msg) []error {
			if len(batches) == 0 {
				<-release // the first batch waits until every message is on its way
			}
			mu.Lock()
			defer mu.Unlock()
			batches = append(batches, len(msgs))
			errs := make([]error, len(msgs))
			for i, msg := range msgs {
				seen[string(msg.Data())]++
				if string(msg.Data()) == "poison" {
					errs[i] = eventbus.Permanent(errors.New("cannot decode"))
				}
			}
			return errs
		}
		giveUp := func(_ context.Context, msg jetstream.Msg, _ error) error {
			mu.Lock()
			defer mu.Unlock()
			given = append(given, string(msg.Data()))
			return nil
		}
		durable := "test-" + uuid.NewString()[:8]
		cfg := eventbus.ConsumerConfig{Durable: durable, Subjects: []string{subject}, HandlerTimeout: 5 * time.Second, GiveUp: giveUp}
		errc := make(chan error, 1)
		go func() {
			errc <- eventbus.ConsumeBatches(ctx, js, cfg, maxBatch, handler, slog.New(slog.DiscardHandler))
		}()
		for i := range n {
			body := fmt.Sprintf("message %d", i)
			if i == n/2 {
				body = "poison"
			}
			if err := pub.Publish(ctx, subject, uuid.NewString(), []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
		name := eventbus.ConsumerName(durable, subject)
		var cons jetstream.Consumer
		deadline := time.Now().Add(10 * time.Second)
		for {
			var info *jetstream.ConsumerInfo
			if cons == nil {
				cons, _ = js.Consumer(ctx, eventbus.Stream, name)
			}
			if cons != nil {
				if info, _ = cons.Info(ctx); info != nil && info.NumAckPending == n {
					break // every message delivered, none acknowledged: they wait behind the first batch
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("messages not delivered in time: %+v", info)
			}
			runtime.Gosched()
		}
		close(release)
		for {
			info, err := cons.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.NumAckPending == 0 && info.NumPending == 0 {
				if info.NumRedelivered != 0 {
					t.Errorf("%d messages redelivered, want none", info.NumRedelivered)
				}
				break
			}
			if time.Now().After(deadline.Add(10 * time.Second)) {
				t.Fatalf("messages still pending: %+v", info)
			}
			runtime.Gosched()
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != n {
			t.Errorf("%d distinct messages handled, want %d", len(seen), n)
		}
		for body, times := range seen {
			if times != 1 {
				t.Errorf("%q handled %d times, want once", body, times)
			}
		}
		if len(batches) >= n/2 {
			t.Errorf("%d batches for %d messages (%v): they were not batched", len(batches), n, batches)
		}
		for _, size := range batches {
			if size > maxBatch {
				t.Errorf("a batch of %d messages, over the limit of %d", size, maxBatch)
			}
		}
		if diff := cmp.Diff([]string{"poison"}, given); diff != "" {
			t.Errorf("given up (-want +got):\n%s", diff)
		}
		_ = js.DeleteConsumer(context.Background(), eventbus.Stream, name)
	})
}
