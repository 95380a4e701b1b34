package chaos

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/natsusers"
)

// natsNode is one nats-server of the run: its client, cluster and monitoring addresses and its store.
type natsNode struct {
	name                            string
	clientAddr, clusterAddr, opsURL string
	confFile, storeDir              string
}

// natsUsers are the services' NATS passwords, made for the run, and the environment that hands
// nats-server their bcrypt hashes (the generated authorization block names them as variables, so the
// configuration file holds no secret, as in deploy/nats).
type natsUsers struct {
	passwords map[eventbus.Service]string
	hashEnv   []string
}

func newNATSUsers() (natsUsers, error) {
	u := natsUsers{passwords: map[eventbus.Service]string{}}
	for _, s := range eventbus.Services() {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		p := base64.RawURLEncoding.EncodeToString(b)
		// The lowest cost, as natsusers.Users: the password is random, and every connection pays the hash.
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			return u, fmt.Errorf("nats password hash: %w", err)
		}
		u.passwords[s] = p
		u.hashEnv = append(u.hashEnv, "HERALD_NATS_"+strings.ToUpper(string(s))+"_PASSWORD_HASH="+string(h))
	}
	return u, nil
}

// serviceEnv is what service s needs to connect as its own user.
func (u natsUsers) serviceEnv(s eventbus.Service) []string {
	return []string{"HERALD_NATS_USER=herald-" + string(s), "HERALD_NATS_PASSWORD=" + u.passwords[s]}
}

// writeNATSConfigs writes one configuration per node into dir: JetStream with file storage, the
// services' users and grants from natsusers.Config (the same generator as deploy/nats/herald-auth.conf),
// and with more than one node a cluster block with routes to all of them.
func writeNATSConfigs(dir string, n int) ([]natsNode, error) {
	auth, err := natsusers.Config(eventbus.Stream, map[eventbus.Service]string{
		eventbus.ServiceApproval: "herald-approval", eventbus.ServicePublisher: "herald-publisher",
	})
	if err != nil {
		return nil, err
	}
	nodes := make([]natsNode, n)
	for i := range nodes {
		nd := &nodes[i]
		nd.name = fmt.Sprintf("nats-%d", i+1)
		if nd.clientAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		if nd.clusterAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		ops, err := freeAddr()
		if err != nil {
			return nil, err
		}
		nd.opsURL = "http://" + ops
		nd.storeDir = filepath.Join(dir, nd.name)
		nd.confFile = filepath.Join(dir, nd.name+".conf")
	}
	for i, nd := range nodes {
		var b strings.Builder
		host, port := splitHostPort(nd.clientAddr)
		fmt.Fprintf(&b, "server_name: %s\nhost: %s\nport: %s\n", nd.name, host, port)
		_, opsPort := splitHostPort(strings.TrimPrefix(nd.opsURL, "http://"))
		fmt.Fprintf(&b, "http: \"%s:%s\"\n", host, opsPort)
		// The default sync interval: a SIGKILL of the process leaves written data in the page cache, so
		// the production setting (sync_interval: always, deploy/nats) would only slow the run; it guards
		// against power loss, which this harness cannot cause.
		fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  max_file_store: 4G\n  max_memory_store: 256M\n}\n", nd.storeDir)
		if n > 1 {
			var routes []string
			for j, o := range nodes {
				if j != i {
					routes = append(routes, fmt.Sprintf("    \"nats-route://%s\"", o.clusterAddr))
				}
			}
			fmt.Fprintf(&b, "cluster {\n  name: herald-chaos\n  listen: %q\n  routes: [\n%s\n  ]\n}\n", nd.clusterAddr, strings.Join(routes, "\n"))
		}
		b.WriteString(auth)
		if err := os.WriteFile(nd.confFile, []byte(b.String()), 0o600); err != nil {
			return nil, fmt.Errorf("nats config: %w", err)
		}
	}
	return nodes, nil
}

// natsURL is the client URL list of the nodes, which nats.go accepts comma-separated.
func natsURL(nodes []natsNode) string {
	urls := make([]string, len(nodes))
	for i, nd := range nodes {
		urls[i] = "nats://" + nd.clientAddr
	}
	return strings.Join(urls, ",")
}

func splitHostPort(addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}
