package stack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/natsusers"
	"github.com/heraldhq/herald/services/heraldshared/seal"
)

// sealKeys are the paths of the local stack's seal key pairs, generated into the data directory on
// first start (0600 in a 0700 directory, public halves too: nothing in the data directory is for anyone
// else) and kept, like secrets.json.
type sealKeys struct {
	ApprovalKey, ApprovalPub, PublisherKey, PublisherPub string
}

// ensureSealKeys makes the approval service's and the publisher's key pairs if they do not exist yet.
func ensureSealKeys(dataDir string) (sealKeys, error) {
	dir := filepath.Join(dataDir, "keys")
	k := sealKeys{
		ApprovalKey: filepath.Join(dir, "approval.key"), ApprovalPub: filepath.Join(dir, "approval.pub"),
		PublisherKey: filepath.Join(dir, "publisher.key"), PublisherPub: filepath.Join(dir, "publisher.pub"),
	}
	for _, name := range []string{"approval", "publisher"} {
		_, err := os.Stat(filepath.Join(dir, name+".key"))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if _, err := seal.WriteKeyPair(dir, name); err != nil {
				return sealKeys{}, fmt.Errorf("seal keys: %w", err)
			}
		case err != nil:
			return sealKeys{}, fmt.Errorf("seal keys: %w", err)
		}
		// WriteKeyPair makes public halves 0644, fit to hand out; here the services read them in place.
		if err := os.Chmod(filepath.Join(dir, name+".pub"), 0o600); err != nil {
			return sealKeys{}, fmt.Errorf("seal keys: %w", err)
		}
	}
	return k, nil
}

// useSealKeys gives each service the generated keys for the variables left unset.
func useSealKeys(cfg *Config, k sealKeys) {
	for _, f := range []struct {
		dst *string
		val string
	}{
		{&cfg.Approval.SealKeyFile, k.ApprovalKey}, {&cfg.Approval.PublisherKeysFile, k.PublisherPub},
		{&cfg.Publisher.SealKeyFile, k.PublisherKey}, {&cfg.Publisher.ApprovalKeysFile, k.ApprovalPub},
	} {
		if *f.dst == "" {
			*f.dst = f.val
		}
	}
}

// natsAccounts are the embedded server's users: one per service, with a generated password kept in
// secrets.json, and each service's consumer names, which its grants name.
func natsAccounts(cfg Config, sec *secrets) ([]natsusers.Account, error) {
	var accounts []natsusers.Account
	for _, s := range eventbus.Services() {
		password, err := sec.natsPassword(s)
		if err != nil {
			return nil, err
		}
		a := natsusers.Account{Service: s, User: "herald-" + string(s), Password: password}
		switch s {
		case eventbus.ServiceApproval:
			a.Durable = cfg.Approval.Consumer
		case eventbus.ServicePublisher:
			a.Durable = cfg.Publisher.Consumer
		}
		accounts = append(accounts, a)
	}
	return accounts, nil
}

// natsServerUsers turns the accounts into the embedded server's users for the configured stream.
func natsServerUsers(cfg Config, accounts []natsusers.Account) ([]*server.User, error) {
	stream := cfg.Approval.Stream
	if stream == "" {
		stream = eventbus.Stream
	}
	return natsusers.Users(stream, accounts)
}

// account returns the account of service s.
func account(accounts []natsusers.Account, s eventbus.Service) natsusers.Account {
	for _, a := range accounts {
		if a.Service == s {
			return a
		}
	}
	return natsusers.Account{}
}
