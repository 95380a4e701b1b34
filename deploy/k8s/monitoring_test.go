package k8s_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// promtool finds Prometheus' promtool (Debian's prometheus package); CI must have it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("promtool is not installed; CI needs it (.ci/run installs Debian's prometheus package)")
	}
	t.Skip("promtool is not installed (apt-get install prometheus); skipping the alert rule checks")
	return ""
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile("monitoring/herald.rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

// dashboardExprs are the PromQL expressions of every panel of the Grafana dashboard.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("monitoring/herald-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("found %d dashboard queries; the parse is broken", len(exprs))
	}
	return exprs
}

// TestAlertRules runs promtool on the rules (syntax, templates) and on their unit tests, checks that every
// alert has a unit test, and that the dashboard's queries are valid PromQL.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	pt := promtool(t)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(pt, args...)
		cmd.Dir = "monitoring"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", "herald.rules.yaml")
	run("test", "rules", "herald.rules_test.yaml")

	tests, err := os.ReadFile("monitoring/herald.rules_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if !regexp.MustCompile(`(?m)^\s+alertname: ` + regexp.QuoteMeta(r.Alert) + `$`).Match(tests) {
				t.Errorf("alert %s has no unit test in herald.rules_test.yaml", r.Alert)
			}
		}
	}
	if alerts < 6 {
		t.Errorf("found %d alerts; the parse is broken", alerts)
	}

	// promtool checks PromQL only in rule files: put each dashboard query in one as a recording rule.
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range dashboardExprs(t) {
		q, _ := json.Marshal(e)
		fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
	}
	f := filepath.Join(t.TempDir(), "dashboard.rules.yaml")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(pt, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("the dashboard's queries are not valid PromQL: %v\n%s", err, out)
	}
}

// metricName finds the names of Herald's own metrics and of the libraries' it uses in PromQL.
var metricName = regexp.MustCompile(`\b(?:herald|grpc_server|go|process)_[a-z0-9_]+\b`)

// exportedMetrics are the metric names the services' code registers: the Name of every
// prometheus.*Opts and NewDesc in non-test Go files, and the metrics of the collectors it uses.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	literal := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"([a-z_:][a-z0-9_:]*)"`)
	var code strings.Builder
	for _, dir := range []string{"../../services", "../../gateway"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			code.Write(b)
			for _, m := range literal.FindAllSubmatch(b, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	src := code.String()
	// The libraries' collectors, where the code registers them.
	if strings.Contains(src, "grpcprom.NewServerMetrics(") {
		names["grpc_server_handled_total"] = true
		names["grpc_server_started_total"] = true
		names["grpc_server_msg_received_total"] = true
		names["grpc_server_msg_sent_total"] = true
		if strings.Contains(src, "grpcprom.WithServerHandlingTimeHistogram(") {
			names["grpc_server_handling_seconds"] = true
		}
	}
	if strings.Contains(src, "collectors.NewGoCollector(") {
		names["go_goroutines"] = true
		names["go_threads"] = true
	}
	if strings.Contains(src, "collectors.NewProcessCollector(") {
		names["process_resident_memory_bytes"] = true
		names["process_cpu_seconds_total"] = true
		names["process_open_fds"] = true
	}
	return names
}

// TestMonitoringMetricsExist holds the rules and the dashboard to the metrics the code exports: an alert
// on a metric nobody exports never fires.
func TestMonitoringMetricsExist(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	var exprs []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	exprs = append(exprs, dashboardExprs(t)...)
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			used[name] = true
		}
	}
	for name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && exported[b] {
				base = b
			}
		}
		if !exported[base] {
			t.Errorf("the rules or the dashboard use %s, which no service exports", name)
		}
	}
	if len(used) < 10 {
		t.Errorf("found %d metric names in the rules and dashboard; the parse is broken", len(used))
	}
}
