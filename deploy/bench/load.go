package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what a closed-loop load run measured: each client sends its next request as soon as
// the previous one was answered.
type loadResult struct {
	Clients  int            `json:"clients"`
	Seconds  float64        `json:"seconds"`
	Accepted int            `json:"accepted"`
	Failed   int            `json:"failed"`
	PerSec   float64        `json:"accepted_per_s"`
	P50ms    float64        `json:"p50_ms"`
	P99ms    float64        `json:"p99_ms"`
	P999ms   float64        `json:"p999_ms"`
	Statuses map[string]int `json:"statuses,omitempty"`
	// FirstError is kept to say why requests failed, not only how many.
	FirstError string `json:"first_error,omitempty"`
	latencies  []time.Duration
}

// merge adds another run of the same kind (the halves of an ABBA order) into r.
func (r *loadResult) merge(o loadResult) {
	r.Clients = o.Clients
	r.Seconds += o.Seconds
	r.Accepted += o.Accepted
	r.Failed += o.Failed
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	if r.Statuses == nil {
		r.Statuses = map[string]int{}
	}
	for k, v := range o.Statuses {
		r.Statuses[k] += v
	}
	r.latencies = append(r.latencies, o.latencies...)
	r.summarise()
}

func (r *loadResult) summarise() {
	slices.Sort(r.latencies)
	r.P50ms, r.P99ms, r.P999ms = ms(quantile(r.latencies, 0.50)), ms(quantile(r.latencies, 0.99)), ms(quantile(r.latencies, 0.999))
	if r.Seconds > 0 {
		r.PerSec = float64(r.Accepted) / r.Seconds
	}
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// request is one request of a load run: seq is unique within the run. It reports the HTTP status, or an
// error when there was no answer.
type request func(ctx context.Context, seq int64) (int, error)

// runLoad runs clients closed loops of req until d passes or, with total > 0, until total requests were
// sent, whichever comes first. Only 202 and 200 answers count as accepted and have their latency kept.
// Requests in flight when d passes are waited for rather than cancelled: a cancelled request would be
// counted as neither, and would make the gateway log a failure that is the benchmark's own doing.
func runLoad(ctx context.Context, clients int, d time.Duration, total int64, req request) loadResult {
	end := time.Now().Add(d)
	var seq atomic.Int64
	var mu sync.Mutex
	res := loadResult{Clients: clients, Statuses: map[string]int{}}
	var wg sync.WaitGroup
	began := time.Now()
	for range clients {
		wg.Go(func() {
			// Kept per client and merged once, so that recording costs no lock per request.
			var lat []time.Duration
			statuses := map[string]int{}
			failed := 0
			firstErr := ""
			for ctx.Err() == nil && time.Now().Before(end) {
				n := seq.Add(1)
				if total > 0 && n > total {
					break
				}
				t0 := time.Now()
				code, err := req(ctx, n)
				took := time.Since(t0)
				switch {
				case err != nil && ctx.Err() != nil:
					// Interrupted (Ctrl-C): neither accepted nor failed.
				case err != nil:
					failed++
					if firstErr == "" {
						firstErr = err.Error()
					}
				case code == http.StatusAccepted || code == http.StatusOK:
					lat = append(lat, took)
					statuses[fmt.Sprint(code)]++
				default:
					failed++
					statuses[fmt.Sprint(code)]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.latencies = append(res.latencies, lat...)
			res.Failed += failed
			for k, v := range statuses {
				res.Statuses[k] += v
			}
			if res.FirstError == "" {
				res.FirstError = firstErr
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(began).Seconds()
	res.Accepted = len(res.latencies)
	res.summarise()
	return res
}

// tweet is a 100-character tweet, unique by seq and the run's tag.
func tweet(tag string, seq int64) string {
	s := fmt.Sprintf("Herald load test %s #%09d: welcoming our new joiners to the team this week ", tag, seq)
	s += strings.Repeat(".", max(0, 100-len(s)))
	return s[:100]
}

// postBody is the JSON body of POST /v1/posts for a tweet.
func postBody(text string) string {
	return `{"tweet": "` + text + `", "requestedby": "bench@contoso.example"}`
}

// newClient returns an HTTP client that keeps one idle connection per load client, so that a run
// measures requests and not TCP handshakes.
func newClient(clients int) *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, IdleConnTimeout: time.Minute},
		// The approval page answers a decision itself; a redirect is never followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// postTo returns a request that posts a tweet to url (the gateway's or the baseline's /v1/posts).
func postTo(client *http.Client, url, apiKey, tag string) request {
	return func(ctx context.Context, seq int64) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(postBody(tweet(tag, seq))))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		if apiKey != "" {
			req.Header.Set("X-API-Key", apiKey)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}
