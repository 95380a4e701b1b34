// Command local runs all of Herald in one process for development: `go run ./deploy/local`.
// Everything it needs is built in (NATS with JetStream, SQLite, an SMTP server with a mailbox page and an
// X API sandbox); HERALD_NATS_URL, HERALD_DATABASE_URL, HERALD_SMTP_URL and HERALD_X_API_BASE swap in real
// ones. Data lives under HERALD_DATA_DIR (./.herald) and survives restarts.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/template"

	"github.com/caarlos0/env/v11"

	"github.com/heraldhq/herald/deploy/stack"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(log, os.Stdout); err != nil {
		log.Error("herald stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := env.ParseAs[stack.Config]()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	st, err := stack.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := banner.Execute(out, st.Info); err != nil {
		return err
	}
	err = st.Wait()
	log.Info("herald stopped cleanly")
	return err
}

var banner = template.Must(template.New("banner").Parse(`
Herald is running (ready in {{printf "%.1f" .StartedIn.Seconds}}s). Ctrl-C stops it; data stays in the data directory.

  Gateway (connector API)     {{.GatewayURL}}
{{- if .MailboxURL}}
  Mailbox (approval emails)   {{.MailboxURL}}    (SMTP on {{.SMTPAddr}})
{{- end}}
{{- if .SandboxURL}}
  X API sandbox (timeline)    {{.SandboxURL}}
{{- end}}
  Approval service (gRPC)     {{.ApprovalAddr}}    (health, metrics: {{.ApprovalOpsURL}})
  Publisher (gRPC)            {{.PublisherAddr}}    (health, metrics: {{.PublisherOpsURL}})
  NATS JetStream              {{.NATSURL}}

  Demo department:  {{.DemoDepartment}}
  Its API key:      {{.DemoAPIKey}}
  Approver:         {{.DemoApprover}}  (their email lands in the mailbox)
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

`))
