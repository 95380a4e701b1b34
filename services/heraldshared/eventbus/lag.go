package eventbus

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	lagPendingDesc = prometheus.NewDesc("herald_consumer_pending_messages",
		"Messages in the stream that the durable consumer has not delivered yet (its lag). Every replica of a service reports the same consumer: aggregate with max, not sum.",
		[]string{"consumer"}, nil)
	lagAckPendingDesc = prometheus.NewDesc("herald_consumer_ack_pending_messages",
		"Messages delivered to the durable consumer and not acknowledged yet.",
		[]string{"consumer"}, nil)
	lagRedeliveredDesc = prometheus.NewDesc("herald_consumer_redelivered_messages",
		"Messages of the durable consumer being delivered again (their first delivery was not acknowledged in time, or was refused).",
		[]string{"consumer"}, nil)
)

// LagCollector reports the lag of a service's durable consumers (one per subject, named as Consume names
// them), read from JetStream at each scrape: the consumers are shared by every replica, so the numbers
// are the cluster's, not this process's. A consumer JetStream cannot describe (not created yet, NATS
// unreachable) is left out of the scrape and logged, so an alert on absence can catch it.
type LagCollector struct {
	js        jetstream.JetStream
	stream    string
	consumers []string
	timeout   time.Duration
	log       *slog.Logger
}

// NewLagCollector describes the consumers that cfg-style durable and subjects name on stream (Stream
// when empty).
func NewLagCollector(js jetstream.JetStream, stream, durable string, subjects []string, log *slog.Logger) *LagCollector {
	c := &LagCollector{js: js, stream: streamName(stream), timeout: 2 * time.Second, log: log}
	for _, s := range subjects {
		c.consumers = append(c.consumers, ConsumerName(durable, s))
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagPendingDesc
	ch <- lagAckPendingDesc
	ch <- lagRedeliveredDesc
}

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, name := range c.consumers {
		cons, err := c.js.Consumer(ctx, c.stream, name)
		if err != nil {
			c.log.Warn("consumer lag: cannot describe the consumer", "consumer", name, "err", err)
			continue
		}
		info := cons.CachedInfo()
		ch <- prometheus.MustNewConstMetric(lagPendingDesc, prometheus.GaugeValue, float64(info.NumPending), name)
		ch <- prometheus.MustNewConstMetric(lagAckPendingDesc, prometheus.GaugeValue, float64(info.NumAckPending), name)
		ch <- prometheus.MustNewConstMetric(lagRedeliveredDesc, prometheus.GaugeValue, float64(info.NumRedelivered), name)
	}
}
