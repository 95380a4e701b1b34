package main

import (
	"fmt"
	"io"
	"sort"
)

// printReport prints rep as Markdown tables, so that the README's "Performance" section can take them
// as they are.
func printReport(w io.Writer, rep report) {
	fmt.Fprintf(w, "\nHerald benchmarks, %s, %s, %d CPUs%s\n", rep.Started.Format("2006-01-02 15:04 UTC"), rep.GoVersion, rep.NumCPU, map[bool]string{true: " (-quick)"}[rep.Quick])
	if r := rep.Intake; r != nil {
		fmt.Fprintf(w, "\nIntake, POST /v1/posts, whole stack running, %.0f s per side per level; baseline: bare net/http + JetStream publish with ack\n\n", r.SecondsPerSide)
		fmt.Fprintln(w, "| clients | Herald accepted/s | p50 ms | p99 ms | p99.9 ms | baseline accepted/s | p50 ms | p99 ms | p99.9 ms | ratio |")
		fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, row := range r.Rows {
			hr, b := row.Herald, row.Baseline
			fmt.Fprintf(w, "| %d | %.0f | %.2f | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f | %.2f |\n",
				row.Clients, hr.PerSec, hr.P50ms, hr.P99ms, hr.P999ms, b.PerSec, b.P50ms, b.P99ms, b.P999ms, row.Ratio)
		}
	}
	if p := rep.Pipeline; p != nil {
		fmt.Fprintf(w, "\nPipeline, burst of %d requests from %d clients (SQLite)%s\n\n", p.Requests, p.Clients, map[bool]string{true: ", TIMED OUT"}[p.TimedOut])
		fmt.Fprintln(w, "| stage | count | seconds | per s | ratio to intake |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
		fmt.Fprintf(w, "| accepted (gateway) | %d | %.1f | %.0f | 1.00 |\n", p.Accepted, p.IntakeSecs, p.IntakePerSec)
		fmt.Fprintf(w, "| stored (approval service) | %d | %.1f | %.0f | %.2f |\n", p.Stored, p.StoredSecs, p.StoredPerSec, p.StoreRatio)
		fmt.Fprintf(w, "| mailed (SMTP sink) | %d | %.1f | %.0f | %.2f |\n", p.Mailed, p.MailedSecs, p.MailedPerSec, p.MailRatio)
	}
	if len(rep.Decide) > 0 {
		fmt.Fprintln(w, "\nDecision to post: approval POST to the sandbox receiving the tweet")
		fmt.Fprintf(w, "(rounds of at most %d posts on a fresh Herald: the sandbox, like X, takes %d tweets per 15 minutes)\n", sandboxWindow, sandboxWindow)
		fmt.Fprintln(w, "\n| database | posts | rounds | approvers at once | p50 ms | p99 ms | max ms | approval POST p50 ms |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, d := range rep.Decide {
			fmt.Fprintf(w, "| %s | %d | %d | %d | %.1f | %.1f | %.1f | %.1f |\n", d.Database, d.Posted, d.Rounds, d.Clients, d.P50ms, d.P99ms, d.MaxMs, d.DecideP50ms)
		}
	}
	if len(rep.Storage) > 0 {
		fmt.Fprintln(w, "\nStorage: ListPosts (page of 50, gRPC) on a table generated in SQL; ratio = p50 at scale / p50 at 1,000 rows")
		fmt.Fprintln(w, "\n| database | rows | query | posts | p50 ms | p99 ms | ratio |")
		fmt.Fprintln(w, "| --- | ---: | --- | ---: | ---: | ---: | ---: |")
		for _, s := range rep.Storage {
			for _, q := range s.Queries {
				ratio := ""
				if q.Rows == s.Rows && s.Ratios[q.Query] > 0 {
					ratio = fmt.Sprintf("%.2f", s.Ratios[q.Query])
				}
				fmt.Fprintf(w, "| %s | %d | %s | %d | %.2f | %.2f | %s |\n", s.Database, q.Rows, q.Query, q.Got, q.P50ms, q.P99ms, ratio)
			}
		}
	}
	if f := rep.Footprint; f != nil {
		fmt.Fprintf(w, "\nFootprint: RSS, idle and peak under %.0f s of %d clients; local stack ready in %.2f s from exec (banner: %.1f s inside stack.Start)\n\n", f.LoadSeconds, f.LoadClients, f.ReadySec, f.StackReadySec)
		fmt.Fprintln(w, "| process | idle MiB | loaded MiB | requests answered under load |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
		for _, p := range f.Processes {
			fmt.Fprintf(w, "| %s | %.1f | %.1f | %d |\n", p.Name, p.IdleMiB, p.LoadedMiB, p.Accepted)
		}
		fmt.Fprintf(w, "| ratio, one process / hello-world | %.1f | %.1f | |\n", f.IdleRatio, f.LoadedRatio)
	}
	for name, err := range rep.Errors {
		fmt.Fprintf(w, "\n%s FAILED: %s\n", name, err)
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintln(w)
		keys := make([]string, 0, len(rep.Skipped))
		for k := range rep.Skipped {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "skipped %s: %s\n", k, rep.Skipped[k])
		}
	}
}
