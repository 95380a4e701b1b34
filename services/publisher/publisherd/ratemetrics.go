package publisherd

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/services/publisher/internal/xapi"
)

var (
	rateRemainingDesc = prometheus.NewDesc("herald_publisher_x_rate_limit_remaining",
		"Posts X said the account may still make in the current window (x-rate-limit-remaining), as this replica last heard it. Absent until X has answered once.",
		nil, nil)
	rateLimitDesc = prometheus.NewDesc("herald_publisher_x_rate_limit_limit",
		"The size of the account's posting window (x-rate-limit-limit), as this replica last heard it.",
		nil, nil)
	rateResetDesc = prometheus.NewDesc("herald_publisher_x_rate_limit_reset_timestamp_seconds",
		"When the account's posting window starts again (x-rate-limit-reset), in Unix seconds.",
		nil, nil)
)

// rateCollector reports the X rate gate's view of the posting window, so that ops see the window
// running out before posts start to wait for its reset.
type rateCollector struct {
	state func() xapi.RateState
}

func (c rateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rateRemainingDesc
	ch <- rateLimitDesc
	ch <- rateResetDesc
}

func (c rateCollector) Collect(ch chan<- prometheus.Metric) {
	rs := c.state()
	if rs.Limit < 0 || rs.Remaining < 0 {
		return // X has not answered yet (or the window just reset): nothing known to report
	}
	ch <- prometheus.MustNewConstMetric(rateRemainingDesc, prometheus.GaugeValue, float64(rs.Remaining))
	ch <- prometheus.MustNewConstMetric(rateLimitDesc, prometheus.GaugeValue, float64(rs.Limit))
	if !rs.Reset.IsZero() {
		ch <- prometheus.MustNewConstMetric(rateResetDesc, prometheus.GaugeValue, float64(rs.Reset.Unix()))
	}
}
