package stack

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/heraldhq/herald/services/approval/approvald"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/svcconfig"
	"github.com/heraldhq/herald/services/publisher/publisherd"
)

// secrets are the local stack's generated credentials, kept in the data directory (mode 0600) so that a
// restart keeps the same tokens and the same demo API key. Only a development stack does this: in
// production each secret lives where it is used, and API keys exist only as hashes.
type secrets struct {
	AdminToken      string `json:"admin_token"`
	GatewayToken    string `json:"gateway_token"`
	CSRFKey         string `json:"csrf_key"`
	XConsumerKey    string `json:"x_consumer_key"`
	XConsumerSecret string `json:"x_consumer_secret"`
	XAccessToken    string `json:"x_access_token"`
	XAccessSecret   string `json:"x_access_token_secret"`
	// DemoAPIKeys holds the demo department's key for each database the stack has run on, by
	// databaseFingerprint: a key is only good in the database that stores its hash.
	DemoAPIKeys map[string]string `json:"demo_api_keys"`
	// NATSPasswords are the embedded NATS server's passwords, one per service.
	NATSPasswords map[string]string `json:"nats_passwords,omitempty"`
	// LegacyDemoAPIKey is the single key of data directories from before DemoAPIKeys; seed moves it to
	// the database it works with.
	LegacyDemoAPIKey string `json:"demo_api_key,omitempty"`

	dir string
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func loadSecrets(dir string) (*secrets, error) {
	path := filepath.Join(dir, "secrets.json")
	s := &secrets{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("secrets: %w", err)
	default:
		if err := json.Unmarshal(b, s); err != nil {
			return nil, fmt.Errorf("secrets %s: %w", path, err)
		}
	}
	s.dir = dir
	for _, f := range []*string{&s.AdminToken, &s.GatewayToken, &s.CSRFKey, &s.XConsumerSecret, &s.XAccessSecret} {
		if *f == "" {
			*f = randomToken()
		}
	}
	if s.XConsumerKey == "" {
		s.XConsumerKey = "herald-local-" + randomToken()[:12]
	}
	if s.XAccessToken == "" {
		s.XAccessToken = "1850000000000000001-" + randomToken()[:24]
	}
	if s.DemoAPIKeys == nil {
		s.DemoAPIKeys = map[string]string{}
	}
	return s, s.save()
}

// natsPassword returns service's password on the embedded NATS server, made and saved on first use.
func (s *secrets) natsPassword(service eventbus.Service) (string, error) {
	if s.NATSPasswords == nil {
		s.NATSPasswords = map[string]string{}
	}
	if p := s.NATSPasswords[string(service)]; p != "" {
		return p, nil
	}
	s.NATSPasswords[string(service)] = randomToken()
	return s.NATSPasswords[string(service)], s.save()
}

func (s *secrets) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	path := filepath.Join(s.dir, "secrets.json")
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	return nil
}

// xCredentials are an X account's OAuth 1.0a credentials.
type xCredentials struct {
	ConsumerKey, ConsumerSecret, AccessToken, AccessTokenSecret string
}

func (c xCredentials) complete() bool {
	return c.ConsumerKey != "" && c.ConsumerSecret != "" && c.AccessToken != "" && c.AccessTokenSecret != ""
}

// xCredentials are the generated credentials the sandbox accepts.
func (s *secrets) xCredentials() xCredentials {
	return xCredentials{ConsumerKey: s.XConsumerKey, ConsumerSecret: s.XConsumerSecret, AccessToken: s.XAccessToken, AccessTokenSecret: s.XAccessSecret}
}

// setXCredentials makes the publisher use c, and no credential files.
func setXCredentials(p *publisherd.Config, c xCredentials) {
	p.XConsumerKey, p.XConsumerSecret, p.XAccessToken, p.XAccessSecret = c.ConsumerKey, c.ConsumerSecret, c.AccessToken, c.AccessTokenSecret
	p.XConsumerKeyFile, p.XConsumerSecretFile, p.XAccessTokenFile, p.XAccessSecretFile = "", "", "", ""
}

// databaseFingerprint names the approval service's database without its password: "sqlite" for the
// data directory's own file, otherwise a hash of the PostgreSQL server, database, user and schema. A
// password change keeps the fingerprint; another database or schema gets its own.
func databaseFingerprint(cfg approvald.Config) string {
	if !svcconfig.IsPostgres(cfg.DatabaseURL) {
		return "sqlite"
	}
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		return "postgres"
	}
	h := sha256.Sum256([]byte(u.Host + "\x00" + u.Path + "\x00" + u.User.Username() + "\x00" + cfg.DatabaseSchema))
	return "postgres-" + hex.EncodeToString(h[:8])
}

// redactURL hides what authenticates in a URL: a password becomes "xxxxx", and a user name without a
// password (NATS's token form) is hidden whole, as is a password query parameter.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// describeDatabase says which database the services use, for the banner.
func describeDatabase(cfg Config) string {
	if svcconfig.IsPostgres(cfg.Approval.DatabaseURL) {
		return fmt.Sprintf("PostgreSQL %s (schemas %s, %s)", redactURL(cfg.Approval.DatabaseURL), cfg.Approval.DatabaseSchema, cfg.Publisher.DatabaseSchema)
	}
	return "SQLite in " + cfg.DataDir()
}
