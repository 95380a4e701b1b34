package main

import (
	"strings"
	"testing"
)

// input is trimmed `go test -json` output of a run with a pass, a skip (with its message), a failure, a
// package without tests and a build failure.
const input = `{"Action":"start","Package":"example.com/a"}
{"Action":"run","Package":"example.com/a","Test":"TestPass"}
{"Action":"output","Package":"example.com/a","Test":"TestPass","Output":"=== RUN   TestPass\n"}
{"Action":"output","Package":"example.com/a","Test":"TestPass","Output":"    a_test.go:5: noise from a passing test\n"}
{"Action":"output","Package":"example.com/a","Test":"TestPass","Output":"--- PASS: TestPass (0.00s)\n"}
{"Action":"pass","Package":"example.com/a","Test":"TestPass","Elapsed":0}
{"Action":"run","Package":"example.com/a","Test":"TestNATS"}
{"Action":"output","Package":"example.com/a","Test":"TestNATS","Output":"=== RUN   TestNATS\n"}
{"Action":"output","Package":"example.com/a","Test":"TestNATS","Output":"    natstest.go:51: NATS at nats://127.0.0.1:4222 unreachable\n"}
{"Action":"output","Package":"example.com/a","Test":"TestNATS","Output":"--- SKIP: TestNATS (0.00s)\n"}
{"Action":"skip","Package":"example.com/a","Test":"TestNATS","Elapsed":0}
{"Action":"output","Package":"example.com/a","Output":"PASS\n"}
{"Action":"output","Package":"example.com/a","Output":"ok  \texample.com/a\t0.01s\n"}
{"Action":"pass","Package":"example.com/a","Elapsed":0.01}
{"Action":"output","Package":"example.com/b","Output":"?   \texample.com/b\t[no test files]\n"}
{"Action":"skip","Package":"example.com/b","Elapsed":0}
{"Action":"run","Package":"example.com/c","Test":"TestBroken"}
{"Action":"output","Package":"example.com/c","Test":"TestBroken","Output":"=== RUN   TestBroken\n"}
{"Action":"output","Package":"example.com/c","Test":"TestBroken","Output":"    c_test.go:9: got 1, want 2\n"}
{"Action":"output","Package":"example.com/c","Test":"TestBroken","Output":"--- FAIL: TestBroken (0.00s)\n"}
{"Action":"fail","Package":"example.com/c","Test":"TestBroken","Elapsed":0}
{"Action":"output","Package":"example.com/c","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/c","Output":"FAIL\texample.com/c\t0.01s\n"}
{"Action":"fail","Package":"example.com/c","Elapsed":0.01}
`

func TestSummarize(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	failed, err := summarize(strings.NewReader(input), &out, false)
	if err != nil || !failed {
		t.Fatalf("summarize = %v, %v; want failed", failed, err)
	}
	want := "ok  \texample.com/a\t0.01s\n" +
		"?   \texample.com/b\t[no test files]\n" +
		"--- FAIL: TestBroken (0.00s)\n" +
		"    c_test.go:9: got 1, want 2\n" +
		"FAIL\n" +
		"FAIL\texample.com/c\t0.01s\n" +
		"\n1 tests skipped:\n" +
		"  example.com/a TestNATS: natstest.go:51: NATS at nats://127.0.0.1:4222 unreachable\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestSummarizeBuildFailure(t *testing.T) {
	t.Parallel()
	in := `{"ImportPath":"example.com/d [example.com/d.test]","Action":"build-output","Output":"# example.com/d\n"}
{"ImportPath":"example.com/d [example.com/d.test]","Action":"build-output","Output":"d.go:3:1: syntax error\n"}
{"ImportPath":"example.com/d [example.com/d.test]","Action":"build-fail"}
{"Action":"output","Package":"example.com/d","Output":"FAIL\texample.com/d [build failed]\n"}
{"Action":"fail","Package":"example.com/d","Elapsed":0}
not json at all
`
	var out strings.Builder
	failed, err := summarize(strings.NewReader(in), &out, false)
	if err != nil || !failed {
		t.Fatalf("summarize = %v, %v; want failed", failed, err)
	}
	for _, s := range []string{"d.go:3:1: syntax error", "FAIL\texample.com/d [build failed]", "not json at all", "No tests skipped."} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
}

func TestSummarizeVerbose(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if _, err := summarize(strings.NewReader(input), &out, true); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"=== RUN   TestPass", "noise from a passing test", "--- PASS: TestPass", "1 tests skipped:"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("verbose output lacks %q", s)
		}
	}
}
