package tweetlen

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestASCIIFastPathAgreesWithTheFullCount: whatever the shortcut accepts, the full count gives the same
// length; and it refuses whatever could hold a URL or a character outside ASCII.
func TestASCIIFastPathAgreesWithTheFullCount(t *testing.T) {
	t.Parallel()
	cases := []string{"", "Hello", "Line one\nLine two\r\n\tthree", strings.Repeat("a", 281), "#hashtag @mention $cashtag",
		"no dot in http://localhost or example-com", "a b\x7f c"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.IntN(0x80))
		}
		cases = append(cases, string(b))
	}
	cases = append(cases, "The end. Next sentence.", "Wait...", "Done.\nNew line", "a. b", "x.")
	for _, text := range cases {
		fast, ok := V3.countASCII(text)
		if mayHoldURL(text) {
			if ok {
				t.Errorf("countASCII took %q, which may hold a URL", text)
			}
			continue
		}
		if !ok {
			t.Errorf("countASCII refused plain ASCII %q", text)
			continue
		}
		if full := V3.count(text); fast != full {
			t.Errorf("%q: fast %d, full %d", text, fast, full)
		}
	}
	for _, text := range []string{"café", "see example.com", "👋", "日本", "version 1.5", "a.co", "Visit x.com."} {
		if _, ok := V3.countASCII(text); ok {
			t.Errorf("countASCII took %q", text)
		}
	}
}

// mayHoldURL: a dot directly followed by a letter or digit, or anything outside ASCII.
func mayHoldURL(text string) bool {
	for i := 0; i < len(text); i++ {
		if text[i] >= 0x80 || text[i] == '.' && i+1 < len(text) && isAlnum(text[i+1]) {
			return true
		}
	}
	return false
}
