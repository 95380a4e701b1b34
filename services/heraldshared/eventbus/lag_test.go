package eventbus_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

// gauges gathers reg and returns each gauge's value by metric name and consumer label.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestLagCollector reads a consumer's lag from JetStream: what is not delivered yet, what is delivered
// and not acknowledged; and leaves out a consumer that does not exist rather than reporting zero.
func TestLagCollector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const stream = "HERALD_POSTS_LAG"
	nc, js, err := eventbus.Connect(ctx, natstest.Embedded(t), "eventbus-test", eventbus.WithStream(stream))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pub, err := eventbus.NewPublisher(js, 5*time.Second, eventbus.WithStream(stream))
	if err != nil {
		t.Fatal(err)
	}
	requested := eventbus.ConsumerName("lagtest", eventbus.SubjectRequested)
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: requested, FilterSubject: eventbus.SubjectRequested, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := pub.Publish(ctx, eventbus.SubjectRequested, uuid.NewString(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	// The approved consumer is never created: it must be missing from the scrape, not reported as zero.
	reg.MustRegister(eventbus.NewLagCollector(js, stream, "lagtest", []string{eventbus.SubjectRequested, eventbus.SubjectApproved}, slog.New(slog.DiscardHandler)))

	got := gauges(t, reg)
	want := map[string]float64{
		"herald_consumer_pending_messages consumer=" + requested:     3,
		"herald_consumer_ack_pending_messages consumer=" + requested: 0,
		"herald_consumer_redelivered_messages consumer=" + requested: 0,
	}
	check := func() {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("gathered %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
			}
		}
	}
	check()

	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
		// Taken and not acknowledged: ack pending.
	}
	got = gauges(t, reg)
	want["herald_consumer_pending_messages consumer="+requested] = 2
	want["herald_consumer_ack_pending_messages consumer="+requested] = 1
	check()
}
