// Package natsusers turns Herald's NATS grants (eventbus.GrantsFor) into server-side users: for the
// embedded server of the local stack and tests, and as the production nats-server configuration in
// deploy/nats. One source of permissions, so the local stack refuses exactly what production refuses.
package natsusers

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

// Account is one service's NATS user.
type Account struct {
	Service eventbus.Service
	// User is the NATS user name.
	User string
	// Password is the user's password as the service sends it. Users keeps only its bcrypt hash.
	Password string
	// Durable names the service's durable consumers (see eventbus.ConsumerName); empty for the gateway.
	Durable string
}

// Users returns nats-server users for the accounts, each allowed only its service's grants on stream.
// The server keeps bcrypt hashes of the passwords, never the passwords themselves.
func Users(stream string, accounts []Account) ([]*server.User, error) {
	users := make([]*server.User, 0, len(accounts))
	for _, a := range accounts {
		if a.User == "" || len(a.Password) < 16 {
			return nil, fmt.Errorf("nats user for %s: a user name and a password of at least 16 characters are required", a.Service)
		}
		g, err := eventbus.GrantsFor(a.Service, stream, a.Durable)
		if err != nil {
			return nil, err
		}
		// The lowest cost: these passwords are generated (256 random bits), so a slower hash adds nothing
		// against guessing, while every connection pays for it (seconds under the race detector on a busy
		// machine, enough to time connections out). Production hashes of chosen passwords are made with
		// `nats server passwd`, whose cost is higher.
		hash, err := bcrypt.GenerateFromPassword([]byte(a.Password), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("nats user for %s: %w", a.Service, err)
		}
		users = append(users, &server.User{
			Username: a.User,
			Password: string(hash),
			Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: g.Publish},
				Subscribe: &server.SubjectPermission{Allow: g.Subscribe},
			},
		})
	}
	return users, nil
}

// Config renders the authorization block of a nats-server configuration with one user per service,
// whose bcrypt password hashes come from environment variables (HERALD_NATS_<SERVICE>_PASSWORD_HASH)
// when nats-server reads the file, so the file itself holds no secret.
func Config(stream string, durables map[eventbus.Service]string) (string, error) {
	var b strings.Builder
	b.WriteString("# Generated from eventbus.GrantsFor by natsusers.Config; a test keeps it in step.\n")
	b.WriteString("# Each service may publish and subscribe only its own subjects. No user has $JS.API.> or _INBOX.>.\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, s := range eventbus.Services() {
		g, err := eventbus.GrantsFor(s, stream, durables[s])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "    {\n      user: herald-%s\n      password: $HERALD_NATS_%s_PASSWORD_HASH\n", s, strings.ToUpper(string(s)))
		fmt.Fprintf(&b, "      permissions: {\n        publish: { allow: %s }\n        subscribe: { allow: %s }\n      }\n    }\n", list(g.Publish, 10), list(g.Subscribe, 10))
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

// list renders subjects sorted, one a line, indented by indent spaces.
func list(subjects []string, indent int) string {
	s := append([]string(nil), subjects...)
	sort.Strings(s)
	pad := strings.Repeat(" ", indent)
	var b strings.Builder
	b.WriteString("[\n")
	for _, v := range s {
		fmt.Fprintf(&b, "%s%q\n", pad, v)
	}
	b.WriteString(pad[:indent-2] + "]")
	return b.String()
}
