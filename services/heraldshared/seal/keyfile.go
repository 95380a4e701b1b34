package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// PEM block types: PKCS#8 for private keys and PKIX (SubjectPublicKeyInfo) for public keys, the forms
// OpenSSL and every TLS library read ("openssl pkey -in approval.key -pubout" gives the .pub file).
const (
	privateKeyType = "PRIVATE KEY"
	publicKeyType  = "PUBLIC KEY"
)

// maxKeyFile bounds what is read from a key file: a PEM Ed25519 key is about 120 bytes, and a keyring
// of even a hundred keys stays far below this.
const maxKeyFile = 1 << 20

// GenerateKey makes a new Ed25519 key pair and returns the private key as a PKCS#8 PEM block and the
// public key as a PKIX PEM block.
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("seal: generating a key: %w", err)
	}
	return encodeKeyPair(pub, priv)
}

func encodeKeyPair(pub ed25519.PublicKey, priv ed25519.PrivateKey) (privPEM, pubPEM []byte, err error) {
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("seal: encoding the private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("seal: encoding the public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: privateKeyType, Bytes: privDER}),
		pem.EncodeToMemory(&pem.Block{Type: publicKeyType, Bytes: pubDER}), nil
}

// LoadSigner reads a PKCS#8 PEM Ed25519 private key from path. It refuses a file that its group or
// others may read or write: the key is what makes an approval count, so only the service's own user may
// hold it (chmod 600, or 400; in Kubernetes set the secret volume's defaultMode to 0400).
func LoadSigner(path string) (*Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: private key: %w", err)
	}
	defer f.Close()
	// Stat the open file rather than the path, so the mode checked is that of the file read.
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: private key: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: private key %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("seal: private key %s has mode %04o, open to its group or others; chmod 600 it", path, perm)
	}
	data, err := readLimited(f)
	if err != nil {
		return nil, fmt.Errorf("seal: private key %s: %w", path, err)
	}
	s, err := parseSigner(data)
	if err != nil {
		return nil, fmt.Errorf("seal: private key %s: %w", path, err)
	}
	return s, nil
}

// ParseSigner reads a Signer from exactly one PKCS#8 PEM Ed25519 private key. Its errors never quote
// the input.
func ParseSigner(pemBytes []byte) (*Signer, error) {
	s, err := parseSigner(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("seal: private key: %w", err)
	}
	return s, nil
}

func parseSigner(pemBytes []byte) (*Signer, error) {
	blocks, err := decodePEM(pemBytes)
	if err != nil {
		return nil, err
	}
	if len(blocks) != 1 {
		return nil, fmt.Errorf("%d PEM blocks where one private key was expected", len(blocks))
	}
	b := blocks[0]
	switch b.Type {
	case privateKeyType:
	case publicKeyType:
		return nil, errors.New("this is a public key; signing needs the private key")
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("the private key is encrypted; Herald reads unencrypted PKCS#8 keys protected by file permissions")
	default:
		return nil, fmt.Errorf("a %.40q PEM block where a PKCS#8 %q block was expected", b.Type, privateKeyType)
	}
	if len(b.Headers) != 0 {
		return nil, errors.New("the private key's PEM block has headers (legacy encryption?); Herald reads plain PKCS#8")
	}
	// The parser's error is dropped on purpose: ASN.1 errors can describe the bytes they choked on, and
	// these bytes are a private key.
	key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, errors.New("the PEM block is not a valid PKCS#8 private key")
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the private key is %s, not Ed25519", keyKind(key))
	}
	return NewSigner(priv)
}

// LoadKeyring reads the public keys in the PEM files at paths (each may hold several, one per key to
// accept) into one keyring.
func LoadKeyring(paths ...string) (*Keyring, error) {
	if len(paths) == 0 {
		return nil, errors.New("seal: no public key files given for the keyring")
	}
	var pubs []ed25519.PublicKey
	for _, path := range paths {
		data, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("seal: keyring: %w", err)
		}
		keys, err := parsePublicKeys(data)
		if err != nil {
			return nil, fmt.Errorf("seal: keyring %s: %w", path, err)
		}
		pubs = append(pubs, keys...)
	}
	return NewKeyring(pubs...)
}

// ParseKeyring reads a keyring from one or more PKIX PEM Ed25519 public keys. Text outside the PEM
// blocks (a comment naming each key, say) is ignored, but a malformed block is an error rather than a
// key silently left out.
func ParseKeyring(pemBytes []byte) (*Keyring, error) {
	pubs, err := parsePublicKeys(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("seal: keyring: %w", err)
	}
	return NewKeyring(pubs...)
}

func parsePublicKeys(data []byte) ([]ed25519.PublicKey, error) {
	blocks, err := decodePEM(data)
	if err != nil {
		return nil, err
	}
	var pubs []ed25519.PublicKey
	for i, b := range blocks {
		switch b.Type {
		case publicKeyType:
		case privateKeyType, "ENCRYPTED PRIVATE KEY":
			// Refused loudly: a private key here means it was copied to a service that must not have it.
			return nil, fmt.Errorf("PEM block %d is a private key; a keyring holds public keys only, and the private key should not be on this machine", i+1)
		default:
			return nil, fmt.Errorf("PEM block %d is a %.40q block, not %q", i+1, b.Type, publicKeyType)
		}
		key, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", i+1, err)
		}
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("PEM block %d is %s, not Ed25519", i+1, keyKind(key))
		}
		pubs = append(pubs, pub)
	}
	return pubs, nil
}

// decodePEM returns every PEM block in data. pem.Decode skips anything it cannot parse, including a
// truncated or corrupted block, so the blocks found are checked against the BEGIN lines present.
func decodePEM(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	begins := bytes.Count(data, []byte("-----BEGIN "))
	switch {
	case begins == 0:
		return nil, errors.New("no PEM block found (expected -----BEGIN ... KEY-----)")
	case len(blocks) != begins:
		return nil, fmt.Errorf("%d of %d PEM blocks are malformed or truncated", begins-len(blocks), begins)
	}
	return blocks, nil
}

// keyKind names a key's type for an error message without printing the key.
func keyKind(key any) string {
	return fmt.Sprintf("a %T key", key)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readLimited(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("larger than %d bytes, too large for a key file", maxKeyFile)
	}
	return data, nil
}

// WriteKeyPair generates a key pair and writes it to dir as name.key (the private key, mode 0600) and
// name.pub (the public key, mode 0644), creating dir (mode 0700) if needed. It never overwrites: if
// either file exists it refuses and writes nothing, since replacing a key in use would break every
// receiver that trusts it. It returns the new key's id.
func WriteKeyPair(dir, name string) (keyID string, err error) {
	if !validName(name) {
		return "", fmt.Errorf("seal: key name %.40q: use letters, digits, '-', '_' or '.', not starting with '.'", name)
	}
	privPath := filepath.Join(dir, name+".key")
	pubPath := filepath.Join(dir, name+".pub")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", fmt.Errorf("seal: %s already exists; refusing to overwrite a key (move it away to replace it)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("seal: %w", err)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("seal: generating a key: %w", err)
	}
	privPEM, pubPEM, err := encodeKeyPair(pub, priv)
	if err != nil {
		return "", err
	}
	if err := writeNew(privPath, privPEM, 0o600); err != nil {
		return "", fmt.Errorf("seal: writing the private key: %w", err)
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		// Without its public half the private key is of no use and would block the next attempt.
		_ = os.Remove(privPath)
		return "", fmt.Errorf("seal: writing the public key: %w", err)
	}
	return KeyID(pub), nil
}

// writeNew creates path with exactly perm (O_EXCL: never over an existing file, even one created since
// the caller looked) and removes it again if anything fails.
func writeNew(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	// The umask may have taken bits off perm (making the public key 0600 under umask 077); set it exactly.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	// A key file cut short by a crash would fail to load later, far from the cause.
	return f.Sync()
}

func validName(name string) bool {
	if name == "" || name[0] == '.' || len(name) > 100 {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}
