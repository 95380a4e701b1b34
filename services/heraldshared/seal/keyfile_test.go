package seal_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/seal"
)

// writeKeys writes a new key pair to a fresh directory and returns the two paths and the key id.
func writeKeys(t *testing.T) (privPath, pubPath, keyID string) {
	t.Helper()
	dir := t.TempDir()
	id, err := seal.WriteKeyPair(dir, "approval")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "approval.key"), filepath.Join(dir, "approval.pub"), id
}

func TestWriteKeyPairAndLoad(t *testing.T) {
	t.Parallel()
	privPath, pubPath, id := writeKeys(t)
	for path, want := range map[string]fs.FileMode{privPath: 0o600, pubPath: 0o644} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s has mode %04o, want %04o", filepath.Base(path), got, want)
		}
	}
	s, err := seal.LoadSigner(privPath)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.LoadKeyring(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != id || strings.Join(ring.KeyIDs(), ",") != id {
		t.Errorf("key ids: WriteKeyPair %q, signer %q, keyring %v", id, s.KeyID(), ring.KeyIDs())
	}
	a := sampleApproval()
	if err := ring.Verify(a, s.Sign(a)); err != nil {
		t.Errorf("Verify with keys from files: %v", err)
	}
}

func TestWriteKeyPairNeverOverwrites(t *testing.T) {
	t.Parallel()
	privPath, _, _ := writeKeys(t)
	dir := filepath.Dir(privPath)
	before, _ := os.ReadFile(privPath)
	if _, err := seal.WriteKeyPair(dir, "approval"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("WriteKeyPair over existing keys = %v, want an 'already exists' error", err)
	}
	if after, _ := os.ReadFile(privPath); !bytes.Equal(before, after) {
		t.Error("the existing private key changed")
	}

	// Only the public key left over (a half-finished copy, say) is refused too, and no private key is
	// written beside it.
	if err := os.Remove(privPath); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.WriteKeyPair(dir, "approval"); err == nil {
		t.Error("WriteKeyPair with an existing .pub succeeded")
	}
	if _, err := os.Stat(privPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a private key was written beside the old public key: %v", err)
	}
}

func TestWriteKeyPairRefusesBadNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"", "../approval", "a/b", ".hidden", "sp ace", "nl\n"} {
		if _, err := seal.WriteKeyPair(dir, name); err == nil {
			t.Errorf("WriteKeyPair(%q) succeeded", name)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written for bad names: %v", entries)
	}
}

func TestWriteKeyPairCreatesPrivateDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys", "herald")
	if _, err := seal.WriteKeyPair(dir, "publisher"); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o700 {
		t.Errorf("new key directory has mode %04o, want 0700", got)
	}
}

func TestLoadSignerChecksMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o644, false},
		{0o640, false},
		{0o604, false},
		{0o620, false},
		{0o602, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			t.Parallel()
			privPath, _, _ := writeKeys(t)
			if err := os.Chmod(privPath, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := seal.LoadSigner(privPath)
			switch {
			case tt.ok && err != nil:
				t.Errorf("LoadSigner of a %04o file: %v", tt.mode, err)
			case !tt.ok && (err == nil || !strings.Contains(err.Error(), "chmod 600")):
				t.Errorf("LoadSigner of a %04o file = %v, want an error saying chmod 600", tt.mode, err)
			}
		})
	}
}

func TestLoadSignerErrors(t *testing.T) {
	t.Parallel()
	_, pubPath, _ := writeKeys(t)
	if _, err := seal.LoadSigner(filepath.Join(t.TempDir(), "missing.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadSigner of a missing file = %v, want fs.ErrNotExist", err)
	}
	if _, err := seal.LoadSigner(t.TempDir()); err == nil {
		t.Error("LoadSigner of a directory succeeded")
	}
	if err := os.Chmod(pubPath, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.LoadSigner(pubPath); err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("LoadSigner of a public key = %v, want an error saying it is a public key", err)
	}
}

func TestParseSigner(t *testing.T) {
	t.Parallel()
	priv, pub, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	privBlock, _ := pem.Decode(priv)
	corrupt := bytes.Clone(privBlock.Bytes)
	corrupt[len(corrupt)-33] ^= 0xff // inside the DER structure, not the key bytes
	tests := []struct {
		name    string
		in      []byte
		wantErr string // empty: must parse
	}{
		{"generated", priv, ""},
		{"with a comment before", append([]byte("# approval service, 2026-11\n"), priv...), ""},
		{"garbage", []byte("not a key at all"), "no PEM block"},
		{"empty", nil, "no PEM block"},
		{"truncated", priv[:len(priv)-20], "malformed or truncated"},
		{"two keys", append(bytes.Clone(priv), priv...), "2 PEM blocks"},
		{"public key", pub, "public key"},
		{"ECDSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), "not Ed25519"},
		{"OpenSSH key", pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte{1}}), "OPENSSH PRIVATE KEY"},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"headers", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: privBlock.Bytes}), "headers"},
		{"corrupt DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: corrupt}), "not a valid PKCS#8"},
		{"DER of other bytes", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("secret-looking bytes")}), "not a valid PKCS#8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := seal.ParseSigner(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSigner: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseSigner = %v, want an error containing %q", err, tt.wantErr)
			}
			assertNoKeyMaterial(t, err, tt.in)
		})
	}
}

// assertNoKeyMaterial fails if err quotes any run of 8 or more characters of the PEM body or of the
// raw bytes in it.
func assertNoKeyMaterial(t *testing.T, err error, in []byte) {
	t.Helper()
	msg := err.Error()
	for rest := in; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		body := string(pem.EncodeToMemory(&pem.Block{Bytes: b.Bytes}))
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "-----") {
				continue
			}
			for i := 0; i+8 <= len(line); i++ {
				if strings.Contains(msg, line[i:i+8]) {
					t.Fatalf("error %q quotes the key file", msg)
				}
			}
		}
		for i := 0; i+8 <= len(b.Bytes); i++ {
			if strings.Contains(msg, string(b.Bytes[i:i+8])) {
				t.Fatalf("error %q quotes the key's bytes", msg)
			}
		}
	}
}

func TestParseKeyring(t *testing.T) {
	t.Parallel()
	priv1, pub1, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	_, pub2, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s1, err := seal.ParseSigner(priv1)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name    string
		in      []byte
		keys    int
		wantErr string
	}{
		{"one key", pub1, 1, ""},
		{"two keys with comments", join([]byte("# old, remove after 2026-12-01\n"), pub1, []byte("# new\n"), pub2), 2, ""},
		{"same key twice", join(pub1, pub1), 1, ""},
		{"garbage", []byte("garbage"), 0, "no PEM block"},
		{"empty", nil, 0, "no PEM block"},
		{"second key truncated", join(pub1, pub2[:len(pub2)-10]), 0, "1 of 2 PEM blocks are malformed"},
		{"first key corrupted", join(bytes.Replace(pub1, []byte("MCow"), []byte("M*ow"), 1), pub2), 0, "1 of 2 PEM blocks are malformed"},
		{"private key", join(pub1, priv1), 0, "private key"},
		{"ECDSA key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}), 0, "not Ed25519"},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), 0, `"CERTIFICATE" block`},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), 0, "PEM block 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ring, err := seal.ParseKeyring(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKeyring = %v, want an error containing %q", err, tt.wantErr)
				}
				if tt.name == "private key" {
					assertNoKeyMaterial(t, err, priv1)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeyring: %v", err)
			}
			if got := len(ring.KeyIDs()); got != tt.keys {
				t.Fatalf("ParseKeyring found %d keys, want %d", got, tt.keys)
			}
		})
	}

	ring, err := seal.ParseKeyring(join(pub2, pub1))
	if err != nil {
		t.Fatal(err)
	}
	o := sampleOutcome()
	if err := ring.Verify(o, s1.Sign(o)); err != nil {
		t.Errorf("Verify with the second key of a keyring file: %v", err)
	}
}

func TestLoadKeyringFromSeveralFiles(t *testing.T) {
	t.Parallel()
	oldPriv, oldPub, _ := writeKeys(t)
	newPriv, newPub, _ := writeKeys(t)
	ring, err := seal.LoadKeyring(oldPub, newPub)
	if err != nil {
		t.Fatal(err)
	}
	a := sampleApproval()
	for _, p := range []string{oldPriv, newPriv} {
		s, err := seal.LoadSigner(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := ring.Verify(a, s.Sign(a)); err != nil {
			t.Errorf("Verify with the key of %s: %v", p, err)
		}
	}

	if _, err := seal.LoadKeyring(); err == nil {
		t.Error("LoadKeyring() with no files succeeded")
	}
	missing := filepath.Join(t.TempDir(), "missing.pub")
	if _, err := seal.LoadKeyring(oldPub, missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKeyring with a missing file = %v, want fs.ErrNotExist", err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.pub")
	if err := os.WriteFile(garbage, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.LoadKeyring(oldPub, garbage); err == nil || !strings.Contains(err.Error(), garbage) || !strings.Contains(err.Error(), "no PEM block") {
		t.Errorf("LoadKeyring with a garbage file = %v, want an error naming the file", err)
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	priv, pub, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(priv, []byte("-----BEGIN PRIVATE KEY-----\n")) || !bytes.HasPrefix(pub, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Fatalf("GenerateKey returned\n%s\n%s", priv, pub)
	}
	s, err := seal.ParseSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.ParseKeyring(pub)
	if err != nil {
		t.Fatal(err)
	}
	if got := ring.KeyIDs(); len(got) != 1 || got[0] != s.KeyID() {
		t.Errorf("keyring ids %v, signer id %q", got, s.KeyID())
	}
	priv2, _, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(priv, priv2) {
		t.Error("two GenerateKey calls returned the same key")
	}
}
