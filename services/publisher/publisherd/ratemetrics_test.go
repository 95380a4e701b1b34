package publisherd

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/services/publisher/internal/xapi"
)

func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		out[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
	}
	return out
}

func TestRateCollector(t *testing.T) {
	state := xapi.RateState{Limit: -1, Remaining: -1}
	c := rateCollector{state: func() xapi.RateState { return state }}
	if got := gather(t, c); len(got) != 0 {
		t.Errorf("before X answered: %v, want nothing (an unknown window is not an empty one)", got)
	}
	reset := time.Date(2026, 11, 25, 12, 15, 0, 0, time.UTC)
	state = xapi.RateState{Limit: 100, Remaining: 7, Reset: reset}
	got := gather(t, c)
	want := map[string]float64{
		"herald_publisher_x_rate_limit_remaining":               7,
		"herald_publisher_x_rate_limit_limit":                   100,
		"herald_publisher_x_rate_limit_reset_timestamp_seconds": float64(reset.Unix()),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
