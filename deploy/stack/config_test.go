package stack_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
	"github.com/google/go-cmp/cmp"

	"github.com/heraldhq/herald/deploy/stack"
	"github.com/heraldhq/herald/gateway/gatewayd"
	"github.com/heraldhq/herald/services/approval/approvald"
	"github.com/heraldhq/herald/services/publisher/publisherd"
)

// envKeys are the variables cfg's env tags read, with envPrefix applied, keyed by variable.
func envKeys(t *testing.T, cfgs ...any) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	for _, cfg := range cfgs {
		params, err := env.GetFieldParams(cfg)
		if err != nil {
			t.Fatalf("%T: %v", cfg, err)
		}
		for _, p := range params {
			if !p.Ignored && p.Key != "-" {
				keys[p.Key] = true
			}
		}
	}
	return keys
}

// readmeVariables are the HERALD_* names in the first column of the README's configuration table.
func readmeVariables(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Configuration\n")
	if start < 0 {
		t.Fatal("README.md has no ## Configuration section")
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	name := regexp.MustCompile("`(HERALD_[A-Z0-9_]+)`")
	vars := map[string]bool{}
	for line := range strings.Lines(section) {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 3 {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			vars[m[1]] = true
		}
	}
	if len(vars) == 0 {
		t.Fatal("found no variables in the README's configuration table")
	}
	return vars
}

// TestREADMEConfigurationTable holds the README and the code together: every variable in the table is
// read by some Config, and every variable a Config reads is in the table.
func TestREADMEConfigurationTable(t *testing.T) {
	t.Parallel()
	code := envKeys(t, &approvald.Config{}, &publisherd.Config{}, &gatewayd.Config{}, &stack.Local{})
	readme := readmeVariables(t)
	for v := range readme {
		if !code[v] {
			t.Errorf("README's configuration table lists %s, which no Config reads", v)
		}
	}
	for v := range code {
		if !readme[v] {
			t.Errorf("%s is read by a Config but missing from README's configuration table", v)
		}
	}
	// The prefixed pieces are found: a sanity check that the reflection sees embedded structs.
	for _, v := range []string{"HERALD_APPROVAL_HTTP_ADDR", "HERALD_PUBLISHER_HTTP_ADDR", "HERALD_DATABASE_URL", "HERALD_STREAM", "HERALD_ADMIN_TOKEN"} {
		if !code[v] {
			t.Errorf("the Configs' tags do not yield %s", v)
		}
	}
}

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := stack.ParseConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		NATS                                [3]string
		SMTP, XBase, PublicURL, ApprovalFor string
		Tokens                              [4]string
		Addrs                               [5]string
		Consumers                           [2]string
		TTL, MailFrom, DataDir              string
		MaxBody                             int64
	}
	got := view{
		NATS: [3]string{cfg.Approval.NATSURL, cfg.Publisher.NATSURL, cfg.Gateway.NATSURL},
		SMTP: cfg.Approval.SMTPURL, XBase: cfg.Publisher.XAPIBase, PublicURL: cfg.Approval.PublicURL, ApprovalFor: cfg.Gateway.ApprovalAddr,
		Tokens:    [4]string{cfg.Approval.AdminToken, cfg.Publisher.AdminToken, cfg.Approval.GatewayToken, cfg.Gateway.GatewayToken},
		Addrs:     [5]string{cfg.Gateway.HTTPAddr, cfg.Approval.GRPCAddr, cfg.Publisher.GRPCAddr, cfg.Approval.Ops.HTTPAddr, cfg.Publisher.Ops.HTTPAddr},
		Consumers: [2]string{cfg.Approval.Consumer, cfg.Publisher.Consumer},
		TTL:       cfg.Approval.ApprovalTTL.String(), MailFrom: cfg.Approval.MailFrom, DataDir: cfg.DataDir(), MaxBody: cfg.Gateway.MaxBodyBytes,
	}
	want := view{
		// Empty: the stack provides these itself.
		Addrs:     [5]string{"127.0.0.1:8080", "127.0.0.1:9090", "127.0.0.1:9091", "127.0.0.1:9190", "127.0.0.1:9191"},
		Consumers: [2]string{"herald-approval", "herald-publisher"},
		// The services' own defaults.
		TTL: "72h0m0s", MailFrom: "Herald <herald@localhost>", DataDir: ".herald", MaxBody: 28 << 20,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseConfig with nothing set (-want +got):\n%s", diff)
	}
}

func TestParseConfigKeepsWhatIsSet(t *testing.T) {
	t.Parallel()
	cfg, err := stack.ParseConfig(map[string]string{
		"HERALD_NATS_URL": "nats://nats.example:4222", "HERALD_STREAM": "HERALD_POSTS_DEV", "HERALD_SMTP_URL": "smtp://mail.example",
		"HERALD_X_API_BASE": "http://x.example", "HERALD_PUBLIC_URL": "https://herald.example", "HERALD_APPROVAL_ADDR": "approval.example:9090",
		"HERALD_ADMIN_TOKEN": "admin-token-of-sixteen", "HERALD_GATEWAY_TOKEN": "gateway-token-of-sixteen", "HERALD_APPROVAL_TTL": "1h",
		"HERALD_MAIL_FROM": "Comms <comms@example.com>", "HERALD_X_TIMEOUT": "3s", "HERALD_APPROVAL_DB_SCHEMA": "a", "HERALD_PUBLISHER_DB_SCHEMA": "p",
		"HERALD_GATEWAY_ADDR": ":18080", "HERALD_APPROVAL_HTTP_ADDR": "0.0.0.0:19190",
		"HERALD_CONSUMER_PREFIX": "dev", "HERALD_PUBLISHER_CONSUMER": "pub-own",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{
		cfg.Approval.NATSURL, cfg.Publisher.NATSURL, cfg.Gateway.NATSURL, cfg.Approval.Stream, cfg.Publisher.Stream, cfg.Gateway.Stream,
		cfg.Approval.SMTPURL, cfg.Publisher.XAPIBase, cfg.Approval.PublicURL, cfg.Gateway.ApprovalAddr,
		cfg.Approval.AdminToken, cfg.Publisher.AdminToken, cfg.Approval.GatewayToken, cfg.Gateway.GatewayToken,
		cfg.Approval.ApprovalTTL.String(), cfg.Approval.MailFrom, cfg.Publisher.XTimeout.String(), cfg.Approval.DatabaseSchema, cfg.Publisher.DatabaseSchema,
		cfg.Gateway.HTTPAddr, cfg.Approval.Ops.HTTPAddr, cfg.Approval.GRPCAddr,
		cfg.Approval.Consumer, cfg.Publisher.Consumer,
	}
	want := []string{
		"nats://nats.example:4222", "nats://nats.example:4222", "nats://nats.example:4222", "HERALD_POSTS_DEV", "HERALD_POSTS_DEV", "HERALD_POSTS_DEV",
		"smtp://mail.example", "http://x.example", "https://herald.example", "approval.example:9090",
		"admin-token-of-sixteen", "admin-token-of-sixteen", "gateway-token-of-sixteen", "gateway-token-of-sixteen",
		"1h0m0s", "Comms <comms@example.com>", "3s", "a", "p",
		":18080", "0.0.0.0:19190", "127.0.0.1:9090",
		"dev-approval", "pub-own",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseConfig with variables set (-want +got):\n%s", diff)
	}
	if slices.Contains(got, "") {
		t.Error("a set variable came out empty")
	}
}

// TestEnvExample checks that the example environment file for the standalone services sets only
// variables some Config reads, so that a renamed variable does not leave it silently stale.
func TestEnvExample(t *testing.T) {
	t.Parallel()
	code := envKeys(t, &approvald.Config{}, &publisherd.Config{}, &gatewayd.Config{}, &stack.Local{})
	b, err := os.ReadFile("../local/herald.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if !ok || !code[name] {
			t.Errorf("herald.env.example sets %q, which no Config reads", line)
		}
	}
}
