// Command local runs all of Herald in one process for development: `go run ./deploy/local`.
// Everything it needs is built in (NATS with JetStream, SQLite, an SMTP server with a mailbox page and an
// X API sandbox); HERALD_NATS_URL, HERALD_DATABASE_URL, HERALD_SMTP_URL and HERALD_X_API_BASE swap in real
// ones. Every service reads its own HERALD_* variables, as it does when it runs on its own. Data lives
// under HERALD_DATA_DIR (./.herald) and survives restarts.
//
// With -only (say -only nats,mailbox,sandbox) it runs just those stand-ins, for the three services run as
// processes of their own (deploy/local/herald.env.example configures them).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/template"

	"github.com/caarlos0/env/v11"

	"github.com/heraldhq/herald/deploy/stack"
)

func main() {
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	term := console{out: os.Stdout, level: level, quiet: sameTerminal(os.Stdout, os.Stderr)}
	if err := run(os.Args[1:], env.ToMap(os.Environ()), term, log); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Error("herald stopped", "err", err)
		os.Exit(1)
	}
}

// console is where the banner goes, and how loud the logs are.
type console struct {
	out   io.Writer
	level *slog.LevelVar
	// quiet is true when the banner and the logs share one terminal: info logs are left out until the
	// banner is written, so that it is not buried (or cut) by start-up chatter.
	quiet bool
}

// sameTerminal reports whether a and b are one terminal device.
func sameTerminal(a, b *os.File) bool {
	fa, errA := a.Stat()
	fb, errB := b.Stat()
	return errA == nil && errB == nil && fa.Mode()&os.ModeCharDevice != 0 && os.SameFile(fa, fb)
}

func run(args []string, environ map[string]string, term console, log *slog.Logger) error {
	flags := flag.NewFlagSet("local", flag.ContinueOnError)
	only := flags.String("only", "", "run only these stand-ins, comma-separated: nats, mailbox, sandbox")
	if err := flags.Parse(args); err != nil {
		return err
	}
	standIns, err := parseOnly(*only)
	if err != nil {
		return err
	}
	cfg, err := stack.ParseConfig(environ)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if term.quiet {
		term.level.Set(slog.LevelWarn)
	}
	var st *stack.Stack
	tmpl := template.New("banner")
	if *only == "" {
		st, err = stack.Start(ctx, cfg, log)
		tmpl = template.Must(tmpl.Parse(stackBanner))
	} else {
		st, err = stack.StartStandIns(ctx, cfg, standIns, log)
		tmpl = template.Must(tmpl.Parse(standInsBanner))
	}
	if err != nil {
		return err
	}
	// One write, after everything is ready: log lines from other goroutines cannot land inside it.
	var banner bytes.Buffer
	if err := tmpl.Execute(&banner, map[string]any{"Info": st.Info, "Quiet": term.quiet}); err != nil {
		st.Close()
		return fmt.Errorf("banner: %w", err)
	}
	if _, err := term.out.Write(banner.Bytes()); err != nil {
		st.Close()
		return fmt.Errorf("banner: %w", err)
	}
	term.level.Set(slog.LevelInfo)
	err = st.Wait()
	log.Info("herald stopped cleanly")
	return err
}

// parseOnly reads -only's list.
func parseOnly(list string) (stack.StandIns, error) {
	var s stack.StandIns
	if list == "" {
		return s, nil
	}
	for name := range strings.SplitSeq(list, ",") {
		switch strings.TrimSpace(name) {
		case "nats":
			s.NATS = true
		case "mailbox":
			s.Mailbox = true
		case "sandbox":
			s.Sandbox = true
		default:
			return s, fmt.Errorf("-only: unknown stand-in %q (want nats, mailbox or sandbox)", name)
		}
	}
	return s, nil
}

const stackBanner = `
Herald is running (ready in {{printf "%.1f" .Info.StartedIn.Seconds}}s). Ctrl-C stops it; data stays in the data directory.
{{with .Info}}
  Gateway (connector API)     {{.GatewayURL}}
{{- if .MailboxURL}}
  Mailbox (approval emails)   {{.MailboxURL}}    (SMTP on {{.SMTPAddr}})
{{- end}}
{{- if .SandboxURL}}
  X API sandbox (timeline)    {{.SandboxURL}}
{{- end}}
{{- if .TeamsURL}}
  Teams channel (stand-in)    {{.TeamsURL}}    (a policy's teams_webhook_url: {{.TeamsWebhookURL}})
{{- end}}
  Approval service (gRPC)     {{.ApprovalAddr}}    (health, metrics: {{.ApprovalOpsURL}})
  Publisher (gRPC)            {{.PublisherAddr}}    (health, metrics: {{.PublisherOpsURL}})
  NATS JetStream              {{.NATS}}
  Database                    {{.Database}}

  Demo department:  {{.DemoDepartment}}
  Its API key:      {{.DemoAPIKey}}
  Approver:         {{.DemoApprover}}{{if .MailboxURL}}  (their email lands in the mailbox){{end}}
  Admin token:      {{.AdminToken}}

Request a post:

  curl -i -X POST {{.GatewayURL}}/v1/posts \
    -H 'X-API-Key: {{.DemoAPIKey}}' \
    -H 'Content-Type: application/json' \
    -d "{\"tweet\": \"Please welcome our new joiners! ($(date +%H:%M:%S))\", \"requestedby\": \"jo@contoso.example\"}"

Then open the mailbox, follow the link, approve, and poll the Location the gateway returned.
Ops:

  grpcurl -plaintext {{.ApprovalAddr}} list
  grpcurl -plaintext -H 'authorization: Bearer {{.AdminToken}}' {{.ApprovalAddr}} herald.approval.v1.ApprovalService/ListPosts
{{end}}
{{- if .Quiet}}
Logs follow below (info logs were left out while starting, to keep this readable).
{{end}}
`

const standInsBanner = `
Herald's stand-ins are running (ready in {{printf "%.1f" .Info.StartedIn.Seconds}}s). Ctrl-C stops them.
{{with .Info}}
{{- if .NATSURL}}
  NATS JetStream              {{.NATS}}
{{- end}}
{{- if .MailboxURL}}
  Mailbox (approval emails)   {{.MailboxURL}}    (SMTP on {{.SMTPAddr}})
{{- end}}
{{- if .SandboxURL}}
  X API sandbox (timeline)    {{.SandboxURL}}
{{- end}}

Give the services (see deploy/local/herald.env.example for the rest):
{{range .ServiceEnv}}
  {{.}}
{{- end}}
{{- range $service, $vars := .ServiceEnvFor}}

and the {{$service}} its own NATS user:
{{range $vars}}
  {{.}}
{{- end}}
{{- end}}
{{end}}
`
