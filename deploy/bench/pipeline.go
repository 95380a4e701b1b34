package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the driver the approval service uses, to count its rows read-only
)

// pipelineResult is how fast the approval service works through a burst the gateway accepted.
type pipelineResult struct {
	Requests     int     `json:"requests"`
	Clients      int     `json:"clients"`
	Accepted     int     `json:"accepted"`
	IntakeSecs   float64 `json:"intake_seconds"`
	IntakePerSec float64 `json:"intake_per_s"`
	// Stored and Mailed are counted when the run ended; their seconds run from the burst's start to the
	// last one (or to the drain timeout).
	Stored       int     `json:"stored"`
	StoredSecs   float64 `json:"stored_seconds"`
	StoredPerSec float64 `json:"stored_per_s"`
	StoreRatio   float64 `json:"stored_to_intake"`
	Mailed       int     `json:"mailed"`
	MailedSecs   float64 `json:"mailed_seconds"`
	MailedPerSec float64 `json:"mailed_per_s"`
	MailRatio    float64 `json:"mailed_to_intake"`
	TimedOut     bool    `json:"timed_out,omitempty"`
}

// benchPipeline sends a burst of o.burst requests through the gateway, then watches the approval
// service store them (rows in its SQLite database) and mail them (messages in the mailbox). ListPosts
// cannot count (it answers at most 500), so the rows are counted with a read-only connection beside the
// service, which WAL allows without blocking it.
func benchPipeline(ctx context.Context, o options) (pipelineResult, error) {
	h, err := startHerald(ctx, nil, o.logOut)
	if err != nil {
		return pipelineResult{}, err
	}
	defer h.close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(h.dataDir, "approval.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return pipelineResult{}, fmt.Errorf("open approval.db: %w", err)
	}
	defer db.Close()
	count := func() (int, error) {
		var n int
		err := db.QueryRowContext(ctx, "SELECT count(*) FROM posts").Scan(&n)
		return n, err
	}
	before, err := count()
	if err != nil {
		return pipelineResult{}, fmt.Errorf("count posts: %w", err)
	}

	res := pipelineResult{Requests: o.burst, Clients: o.burstClients}
	client := newClient(o.burstClients)
	began := time.Now()
	load := runLoad(ctx, o.burstClients, o.drainTimeout, int64(o.burst), postTo(client, h.st.Info.GatewayURL+"/v1/posts", h.st.Info.DemoAPIKey, randomSuffix()))
	res.Accepted, res.IntakeSecs, res.IntakePerSec = load.Accepted, load.Seconds, load.PerSec
	fmt.Printf("  burst: %d accepted in %.1fs (%.0f/s), %d failed %v %s\n", load.Accepted, load.Seconds, load.PerSec, load.Failed, load.Statuses, load.FirstError)

	// Polled every 500 ms: often enough for rates over tens of seconds, rarely enough that counting
	// costs the services under test next to nothing.
	deadline := began.Add(o.drainTimeout)
	lastPrint := time.Now()
	for {
		stored, err := count()
		if err != nil {
			return res, fmt.Errorf("count posts: %w", err)
		}
		stored -= before
		mailed, err := h.mailCount()
		if err != nil {
			return res, err
		}
		now := time.Since(began).Seconds()
		if res.Stored < res.Accepted && stored >= res.Accepted {
			res.StoredSecs = now
		}
		if res.Mailed < res.Accepted && mailed >= res.Accepted {
			res.MailedSecs = now
		}
		res.Stored, res.Mailed = stored, mailed
		if stored >= res.Accepted && mailed >= res.Accepted {
			break
		}
		if time.Now().After(deadline) {
			res.TimedOut = true
			if res.StoredSecs == 0 {
				res.StoredSecs = now
			}
			if res.MailedSecs == 0 {
				res.MailedSecs = now
			}
			break
		}
		if time.Since(lastPrint) > 5*time.Second {
			fmt.Printf("  %.0fs: stored %d, mailed %d\n", now, stored, mailed)
			lastPrint = time.Now()
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	res.StoredPerSec = float64(res.Stored) / res.StoredSecs
	res.MailedPerSec = float64(res.Mailed) / res.MailedSecs
	if res.IntakePerSec > 0 {
		res.StoreRatio, res.MailRatio = res.StoredPerSec/res.IntakePerSec, res.MailedPerSec/res.IntakePerSec
	}
	fmt.Printf("  stored %d in %.1fs (%.0f/s, %.2f of intake), mailed %d in %.1fs (%.0f/s, %.2f of intake)\n",
		res.Stored, res.StoredSecs, res.StoredPerSec, res.StoreRatio, res.Mailed, res.MailedSecs, res.MailedPerSec, res.MailRatio)
	return res, nil
}
