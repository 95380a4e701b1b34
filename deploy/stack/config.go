package stack

import (
	"errors"
	"fmt"
	"net"

	"github.com/caarlos0/env/v11"

	"github.com/heraldhq/herald/gateway/gatewayd"
	"github.com/heraldhq/herald/services/approval/approvald"
	"github.com/heraldhq/herald/services/publisher/publisherd"
)

// Config is the local stack's configuration: each service's own Config, read from the same HERALD_*
// variables as the standalone services, and where the stand-ins listen. ParseConfig fills it; a field
// it leaves empty is one the stack provides when it starts:
//
//   - NATSURL (in all three): an embedded NATS server with JetStream on Local.NATSAddr;
//   - Approval.SMTPURL: the mailbox, an SMTP server with a page;
//   - Publisher.XAPIBase: the X API sandbox, with generated credentials;
//   - the admin and gateway tokens and Gateway.CSRFKey: generated and kept in the data directory;
//   - Approval.PublicURL and Gateway.PublicURL: the gateway's own URL;
//   - Gateway.ApprovalAddr: the approval service's listener;
//   - Approval.WebhookAllowLoopback and WebhookAllowHTTP: on, for webhook receivers on this machine.
type Config struct {
	Approval  approvald.Config
	Publisher publisherd.Config
	Gateway   gatewayd.Config
	Local     Local
}

// Local is what only the local stack reads: where its stand-ins listen and how it names consumers.
type Local struct {
	// NATSAddr is the embedded NATS server's address: not 4222, which is often a system NATS already.
	NATSAddr    string `env:"HERALD_LOCAL_NATS_ADDR" envDefault:"127.0.0.1:4223"`
	SMTPAddr    string `env:"HERALD_LOCAL_SMTP_ADDR" envDefault:"127.0.0.1:1025"`
	MailboxAddr string `env:"HERALD_LOCAL_MAILBOX_ADDR" envDefault:"127.0.0.1:8025"`
	SandboxAddr string `env:"HERALD_LOCAL_SANDBOX_ADDR" envDefault:"127.0.0.1:8090"`
	// TeamsAddr is where the Teams stand-in takes cards (POST /webhook) and shows them (/).
	TeamsAddr string `env:"HERALD_LOCAL_TEAMS_ADDR" envDefault:"127.0.0.1:8026"`
	// ConsumerPrefix names the durable consumers (<prefix>-approval, <prefix>-publisher) unless their own
	// variables are set, so that stacks sharing one NATS server (tests) do not take each other's messages.
	ConsumerPrefix string `env:"HERALD_CONSUMER_PREFIX" envDefault:"herald"`
}

// DataDir is where the services and the stand-ins keep their files: HERALD_DATA_DIR, read by the
// services' shared database configuration.
func (c Config) DataDir() string { return c.Approval.DataDir }

// ParseConfig reads every service's Config from environ (variable name to value, as env.ToMap makes
// from os.Environ) and then changes only what the local stack provides itself: the stand-ins and
// generated secrets whose variables are unset (see Config), listen addresses on the loopback interface
// unless set, and consumer names from HERALD_CONSUMER_PREFIX unless set. A variable set to "" counts as
// unset, as it does for the services' defaults.
func ParseConfig(environ map[string]string) (Config, error) {
	opts := env.Options{Environment: environ}
	var c Config
	var err error
	// Each service is parsed from the same map: the "unset" option removes secrets from the process's
	// environment as they are read, which must not hide them from the next service.
	if c.Approval, err = env.ParseAsWithOptions[approvald.Config](opts); err != nil {
		return Config{}, fmt.Errorf("approval service: %w", err)
	}
	if c.Publisher, err = env.ParseAsWithOptions[publisherd.Config](opts); err != nil {
		return Config{}, fmt.Errorf("publisher: %w", err)
	}
	if c.Gateway, err = env.ParseAsWithOptions[gatewayd.Config](opts); err != nil {
		return Config{}, fmt.Errorf("gateway: %w", err)
	}
	if c.Local, err = env.ParseAsWithOptions[Local](opts); err != nil {
		return Config{}, fmt.Errorf("local stack: %w", err)
	}
	unset := func(name string) bool { return environ[name] == "" }

	if unset("HERALD_NATS_URL") {
		c.Approval.NATSURL, c.Publisher.NATSURL, c.Gateway.NATSURL = "", "", ""
	}
	if unset("HERALD_SHUTDOWN_DELAY") {
		// One process on a laptop has no load balancer to wait for: Ctrl-C stops at once.
		c.Approval.ShutdownDelay, c.Publisher.ShutdownDelay, c.Gateway.ShutdownDelay = 0, 0, 0
	}
	if unset("HERALD_SMTP_URL") {
		c.Approval.SMTPURL = ""
	}
	if unset("HERALD_X_API_BASE") {
		c.Publisher.XAPIBase = ""
	}
	if unset("HERALD_PUBLIC_URL") {
		c.Approval.PublicURL, c.Gateway.PublicURL = "", ""
	}
	if unset("HERALD_APPROVAL_ADDR") {
		c.Gateway.ApprovalAddr = ""
	}
	// The demo's webhook receivers (a script or flow on this machine, the e2e test) listen on loopback
	// over plain http. Link-local (the metadata address) and private addresses stay refused.
	if unset("HERALD_WEBHOOK_ALLOW_LOOPBACK") {
		c.Approval.WebhookAllowLoopback = true
	}
	if unset("HERALD_WEBHOOK_ALLOW_HTTP") {
		c.Approval.WebhookAllowHTTP = true
	}

	var errs []error
	loopback := func(name string, addr *string) {
		if !unset(name) {
			return
		}
		host, port, err := net.SplitHostPort(*addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("default of %s: %w", name, err))
			return
		}
		if host == "" {
			*addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	c.Approval.Ops.HTTPAddr = c.Approval.Ops.Addr(approvald.DefaultOpsAddr)
	c.Publisher.Ops.HTTPAddr = c.Publisher.Ops.Addr(publisherd.DefaultOpsAddr)
	loopback("HERALD_GATEWAY_ADDR", &c.Gateway.HTTPAddr)
	loopback("HERALD_APPROVAL_GRPC_ADDR", &c.Approval.GRPCAddr)
	loopback("HERALD_PUBLISHER_GRPC_ADDR", &c.Publisher.GRPCAddr)
	loopback("HERALD_APPROVAL_HTTP_ADDR", &c.Approval.Ops.HTTPAddr)
	loopback("HERALD_PUBLISHER_HTTP_ADDR", &c.Publisher.Ops.HTTPAddr)

	if unset("HERALD_APPROVAL_CONSUMER") {
		c.Approval.Consumer = c.Local.ConsumerPrefix + "-approval"
	}
	if unset("HERALD_PUBLISHER_CONSUMER") {
		c.Publisher.Consumer = c.Local.ConsumerPrefix + "-publisher"
	}
	return c, errors.Join(errs...)
}
