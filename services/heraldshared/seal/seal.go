package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
)

// Errors of Verify and CheckText, which callers branch on with errors.Is. All of them mean the event
// must be refused for good: redelivering it cannot make it valid.
var (
	// ErrUnsigned means the event carries no seal at all.
	ErrUnsigned = errors.New("seal: the event is not sealed")
	// ErrUnknownKey means the seal names a key that is not in the keyring: a key removed after a
	// rotation, another environment's key, or a forgery.
	ErrUnknownKey = errors.New("seal: the seal's key is not in the keyring")
	// ErrBadSignature means the signature does not verify: the statement differs from what was signed,
	// or the signature was tampered with.
	ErrBadSignature = errors.New("seal: the signature does not verify")
	// ErrTextMismatch means an event's text does not hash to the text hash it carries.
	ErrTextMismatch = errors.New("seal: the text does not match its signed hash")
)

// Seal is a signature over a statement and the id of the key that made it. The zero Seal means
// unsealed.
type Seal struct {
	// KeyID names the signing key (see KeyID).
	KeyID string
	// Signature is the 64-byte Ed25519 signature over the statement's canonical encoding.
	Signature []byte
}

// IsZero reports whether s carries neither a key id nor a signature.
func (s Seal) IsZero() bool { return s.KeyID == "" && len(s.Signature) == 0 }

// KeyID derives a key's id from the public key itself: the first 16 characters (96 bits) of the
// unpadded base64url SHA-256 of its 32 raw bytes. Operators never choose or type key ids, and two keys
// cannot share one by mistake. The id is not signed: it only picks the key to verify with, and a
// signature made by one key never verifies with another.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:])[:16]
}

// Signer signs statements with one private key. It is safe for concurrent use.
type Signer struct {
	keyID string
	priv  ed25519.PrivateKey
}

// NewSigner returns a Signer for priv.
func NewSigner(priv ed25519.PrivateKey) (*Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("seal: an Ed25519 private key has %d bytes, not %d", ed25519.PrivateKeySize, len(priv))
	}
	priv = slices.Clone(priv) // the caller may reuse or wipe its slice
	return &Signer{keyID: KeyID(priv.Public().(ed25519.PublicKey)), priv: priv}, nil
}

// KeyID returns the id of the signer's key, which every Seal it makes carries.
func (s *Signer) KeyID() string { return s.keyID }

// Public returns the signer's public key, for the receivers' keyring.
func (s *Signer) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// Sign seals stmt. Ed25519 signatures are deterministic: the same key and statement always give the
// same seal.
func (s *Signer) Sign(stmt Statement) Seal {
	return Seal{KeyID: s.keyID, Signature: ed25519.Sign(s.priv, stmt.Canonical())}
}

// Keyring holds the public keys a receiver accepts seals from. It holds several during a key rotation:
// the old key, for events signed before the switch and still in flight, and the new one. A Keyring is
// immutable and safe for concurrent use; rotating means loading a new one.
type Keyring struct {
	keys map[string]ed25519.PublicKey
}

// NewKeyring returns a keyring of pubs. It refuses an empty list, since a keyring that accepts nothing
// would refuse every event; the same key given twice counts once.
func NewKeyring(pubs ...ed25519.PublicKey) (*Keyring, error) {
	if len(pubs) == 0 {
		return nil, errors.New("seal: a keyring needs at least one public key")
	}
	keys := make(map[string]ed25519.PublicKey, len(pubs))
	for i, pub := range pubs {
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("seal: public key %d has %d bytes, not %d", i+1, len(pub), ed25519.PublicKeySize)
		}
		keys[KeyID(pub)] = slices.Clone(pub)
	}
	return &Keyring{keys: keys}, nil
}

// KeyIDs returns the ids of the keyring's keys in order, for a service to log at start.
func (k *Keyring) KeyIDs() []string {
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Verify checks that s is a valid seal over stmt by a key in the keyring. The errors wrap ErrUnsigned,
// ErrUnknownKey or ErrBadSignature. The caller builds stmt from the content it is about to act on (for
// an approval, hashing the text it will post), never from a hash the event merely claims.
func (k *Keyring) Verify(stmt Statement, s Seal) error {
	if s.IsZero() {
		return ErrUnsigned
	}
	pub, ok := k.keys[s.KeyID]
	if !ok {
		// The key id comes from the sender: quote it, and only its start, so a log line stays a line.
		return fmt.Errorf("%w: key id %.32q", ErrUnknownKey, s.KeyID)
	}
	if len(s.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, stmt.Canonical(), s.Signature) {
		return fmt.Errorf("%w: key id %s", ErrBadSignature, s.KeyID)
	}
	return nil
}

// CheckText reports whether text hashes to sum, the text hash an event carries; the error wraps
// ErrTextMismatch. A receiver that builds its Approval from TextHash(text) needs this only to tell a
// changed text (ErrTextMismatch) from a bad signature.
func CheckText(text string, sum []byte) error {
	if len(sum) != sha256.Size {
		return fmt.Errorf("%w: the hash has %d bytes, not %d", ErrTextMismatch, len(sum), sha256.Size)
	}
	// A plain comparison: both hashes are public, so timing reveals nothing.
	if want := TextHash(text); !bytes.Equal(want[:], sum) {
		return ErrTextMismatch
	}
	return nil
}

// Reason names why err refused an event, for a metric label: "unsigned", "unknown_key",
// "bad_signature", "text_mismatch", or "invalid" for anything else.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrUnsigned):
		return "unsigned"
	case errors.Is(err, ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, ErrTextMismatch):
		return "text_mismatch"
	default:
		return "invalid"
	}
}
