package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

// intakeRow is one concurrency level: Herald's gateway and the baseline, measured in the same run.
type intakeRow struct {
	Clients  int        `json:"clients"`
	Herald   loadResult `json:"herald"`
	Baseline loadResult `json:"baseline"`
	// Ratio is Herald's accepted/s over the baseline's.
	Ratio float64 `json:"ratio"`
}

// intakeResult is the intake benchmark's output.
type intakeResult struct {
	SecondsPerSide float64     `json:"seconds_per_side"`
	Rows           []intakeRow `json:"rows"`
}

// baselineRequest is the JSON the baseline decodes: the same body the gateway takes.
type baselineRequest struct {
	Tweet       string `json:"tweet"`
	RequestedBy string `json:"requestedby"`
}

// baselineHandler is the bare minimum of an intake: decode the JSON and publish it to JetStream with an
// acknowledgement. No key, no validation, no request id. It publishes the same PostRequested event
// (for the demo department, with a random post id as the gateway's is) rather than the raw JSON, so that
// the approval service behind it does the same work (store, mail) for each side's posts: both sides then
// compete with the same background load on a shared machine.
func baselineHandler(pub *eventbus.Publisher, deptID string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in baselineRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := uuid.NewString()
		ev := &eventsv1.PostRequested{PostId: id, DepartmentId: deptID, Text: in.Tweet, RequestedBy: in.RequestedBy}
		if err := pub.PublishProto(r.Context(), eventbus.SubjectRequested, eventbus.MsgID(id, "requested"), ev); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// startBaseline serves baselineHandler on a free port, publishing to h's NATS as the gateway's user.
// It returns the URL to post to and a function that stops it.
func startBaseline(ctx context.Context, h *herald) (string, func(), error) {
	pw, err := h.natsPassword(eventbus.ServiceGateway)
	if err != nil {
		return "", nil, err
	}
	nc, js, err := eventbus.Connect(ctx, h.st.Info.NATSURL, "bench-baseline", eventbus.AsService(eventbus.ServiceGateway),
		eventbus.WithNATSOptions(nats.UserInfo("herald-gateway", pw)))
	if err != nil {
		return "", nil, fmt.Errorf("baseline: %w", err)
	}
	pub, err := eventbus.NewPublisher(js, 5*time.Second)
	if err != nil {
		nc.Close()
		return "", nil, fmt.Errorf("baseline: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		nc.Close()
		return "", nil, fmt.Errorf("baseline: %w", err)
	}
	srv := &http.Server{Handler: baselineHandler(pub, h.deptID), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("baseline server: %v\n", err)
		}
	}()
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		nc.Close()
	}
	return "http://" + l.Addr().String() + "/v1/posts", stop, nil
}

// benchIntake measures POST /v1/posts at each concurrency level for perSide against the baseline. Each
// level runs baseline, Herald, Herald, baseline (half of perSide each): the approval service works
// through the backlog of the runs before, and that order gives both sides the same share of it.
func benchIntake(ctx context.Context, o options) (intakeResult, error) {
	h, err := startHerald(ctx, nil, o.logOut)
	if err != nil {
		return intakeResult{}, err
	}
	defer h.close()
	baseURL, stop, err := startBaseline(ctx, h)
	if err != nil {
		return intakeResult{}, err
	}
	defer stop()

	res := intakeResult{SecondsPerSide: o.intakeSeconds.Seconds()}
	gatewayURL := h.st.Info.GatewayURL + "/v1/posts"
	half := o.intakeSeconds / 2
	for _, c := range o.clients {
		client := newClient(c)
		row := intakeRow{Clients: c}
		tag := randomSuffix()
		// Warm both sides' connections and caches (the gateway's key cache) so that the first
		// measured requests are not handshakes.
		runLoad(ctx, c, 200*time.Millisecond, 0, postTo(client, baseURL, "", tag+"w"))
		runLoad(ctx, c, 200*time.Millisecond, 0, postTo(client, gatewayURL, h.st.Info.DemoAPIKey, tag+"w"))
		for i, side := range []string{"baseline", "herald", "herald", "baseline"} {
			runTag := fmt.Sprintf("%s%d", tag, i)
			if side == "baseline" {
				row.Baseline.merge(runLoad(ctx, c, half, 0, postTo(client, baseURL, "", runTag)))
			} else {
				row.Herald.merge(runLoad(ctx, c, half, 0, postTo(client, gatewayURL, h.st.Info.DemoAPIKey, runTag)))
			}
		}
		client.CloseIdleConnections()
		if row.Baseline.PerSec > 0 {
			row.Ratio = row.Herald.PerSec / row.Baseline.PerSec
		}
		res.Rows = append(res.Rows, row)
		fmt.Printf("  intake %2d clients: herald %.0f/s, baseline %.0f/s, ratio %.2f\n", c, row.Herald.PerSec, row.Baseline.PerSec, row.Ratio)
	}
	return res, nil
}
