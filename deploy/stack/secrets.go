package stack

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	DemoAPIKey      string `json:"demo_api_key"`
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
	return s, s.save(dir)
}

func (s *secrets) save(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "secrets.json")
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	return os.Rename(path+".tmp", path)
}
