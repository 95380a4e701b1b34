package publisherd

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// countingChannel counts a channel's calls by outcome, for herald_publisher_channel_calls_total.
type countingChannel struct {
	ledger.Channel
	calls *prometheus.CounterVec
}

func newCountingChannel(ch ledger.Channel, reg prometheus.Registerer) (*countingChannel, error) {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_publisher_channel_calls_total",
		Help: "Calls to a social channel by outcome: published, rejected, retryable, ambiguous, duplicate.",
	}, []string{"channel", "outcome"})
	if err := reg.Register(calls); err != nil {
		return nil, err
	}
	return &countingChannel{Channel: ch, calls: calls}, nil
}

// Post implements ledger.Channel.
func (c *countingChannel) Post(ctx context.Context, text string, pics []ledger.Attachment) (ledger.Result, error) {
	res, err := c.Channel.Post(ctx, text, pics)
	outcome := "published"
	var ce *ledger.ChannelError
	switch {
	case err == nil:
	case errors.As(err, &ce) && ce.Kind == ledger.Rejected:
		outcome = "rejected"
	case errors.As(err, &ce) && ce.Kind == ledger.Retryable:
		outcome = "retryable"
	case errors.As(err, &ce) && ce.Kind == ledger.Duplicate:
		outcome = "duplicate"
	default:
		outcome = "ambiguous"
	}
	c.calls.WithLabelValues(c.Name(), outcome).Inc()
	return res, err
}
