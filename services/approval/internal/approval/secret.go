package approval

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// apiKeyPrefix marks Herald API keys so that secret scanners and people can recognise a leaked one.
const apiKeyPrefix = "hk_"

// newSecret returns 256 random bits, URL-safe.
func newSecret() string {
	b := make([]byte, 32)
	// crypto/rand.Read never fails on supported platforms (it panics rather than return short).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret is how API keys and approval tokens are stored: high-entropy secrets need no salt or
// stretching, only a one-way hash so that a database leak reveals nothing usable.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// sameHash compares two hashes in constant time.
func sameHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
