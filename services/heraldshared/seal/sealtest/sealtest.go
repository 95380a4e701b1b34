// Package sealtest gives tests fresh seal keys.
package sealtest

import (
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/seal"
)

// NewKey returns a fresh signing key and a keyring that trusts only it.
func NewKey(t testing.TB) (*seal.Signer, *seal.Keyring) {
	t.Helper()
	priv, _, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := seal.ParseSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	return signer, keys
}
