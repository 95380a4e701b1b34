// Command testsummary reads `go test -json` on stdin, prints what `go test` would have printed (the
// output of failing tests, package results, build errors), and ends with the list of skipped tests and
// why each was skipped, so that a suite skipped for want of PostgreSQL or NATS cannot pass unnoticed. It
// exits with status 1 when a test or a build failed, as go test does.
//
//	go test -json ./... | testsummary [-v]
//
// With -v it prints every test's output, as `go test -v` does.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	verbose := flag.Bool("v", false, "print the output of every test, as go test -v does")
	flag.Parse()
	failed, err := summarize(os.Stdin, os.Stdout, *verbose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // of build-output and build-fail events
}

// skip is a skipped test and the lines it logged.
type skip struct {
	pkg, test string
	message   []string
}

// summarize copies the human output of the events read from r to w, followed by the skipped tests, and
// reports whether anything failed.
func summarize(r io.Reader, w io.Writer, verbose bool) (failed bool, err error) {
	out := bufio.NewWriter(w)
	defer func() {
		if ferr := out.Flush(); err == nil {
			err = ferr
		}
	}()
	// pending holds each running test's output until it ends: printed if it fails, kept as the reason if
	// it is skipped, dropped if it passes.
	pending := map[string][]string{}
	var skips []skip
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			// Not an event (go vet's or the linker's complaints, say): pass it on.
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		key := ev.Package + " " + ev.Test
		switch ev.Action {
		case "build-output":
			fmt.Fprint(out, ev.Output)
		case "build-fail":
			failed = true
		case "output":
			switch {
			case verbose:
				fmt.Fprint(out, ev.Output)
			case ev.Test == "":
				// Package results ("ok", "FAIL", "?   [no test files]"); a passing package's bare "PASS"
				// is what go test leaves out without -v.
				if ev.Output != "PASS\n" {
					fmt.Fprint(out, ev.Output)
				}
			default:
				pending[key] = append(pending[key], ev.Output)
			}
		case "fail":
			failed = true
			if !verbose {
				// As go test prints it: the --- FAIL line, then what the test logged.
				for _, l := range pending[key] {
					if strings.HasPrefix(strings.TrimSpace(l), "--- FAIL") {
						fmt.Fprint(out, l)
					}
				}
				for _, l := range pending[key] {
					if !isFrame(l) {
						fmt.Fprint(out, l)
					}
				}
			}
			delete(pending, key)
		case "skip":
			if ev.Test != "" {
				s := skip{pkg: ev.Package, test: ev.Test}
				for _, l := range pending[key] {
					if !isFrame(l) {
						s.message = append(s.message, strings.TrimSpace(l))
					}
				}
				skips = append(skips, s)
			}
			delete(pending, key)
		case "pass":
			delete(pending, key)
		}
	}
	if err := sc.Err(); err != nil {
		return true, fmt.Errorf("read go test -json: %w", err)
	}
	printSkips(out, skips)
	return failed, nil
}

// isFrame reports whether an output line is go test's own framing (=== RUN, --- PASS, ...) rather than
// something the test logged.
func isFrame(l string) bool {
	t := strings.TrimSpace(l)
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- FAIL", "--- SKIP"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

func printSkips(w io.Writer, skips []skip) {
	if len(skips) == 0 {
		fmt.Fprintln(w, "\nNo tests skipped.")
		return
	}
	fmt.Fprintf(w, "\n%d tests skipped:\n", len(skips))
	for _, s := range skips {
		reason := strings.Join(s.message, " ")
		if reason == "" {
			reason = "(no message)"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", s.pkg, s.test, reason)
	}
}
