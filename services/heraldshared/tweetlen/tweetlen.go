// Package tweetlen counts a text the way X counts a tweet: twitter-text's "weighted length" (version 3
// of its configuration). The gateway refuses a request whose tweet X would refuse, and the approval
// page can show the same count while an approver edits the text, so both use this one counter.
//
// The rules, from twitter-text's parseTweet: the text is first normalised to NFC; every URL (with or
// without "https://") counts as 23, whatever its length; an emoji sequence (a flag, a skin tone, a ZWJ
// family, a keycap) counts as 2; any other character counts by the weight of its code point, 1 for the
// ranges in config-v3.json (Latin, Greek, Cyrillic, most punctuation…) and 2 for everything else (CJK,
// most emoji, other scripts). X allows at most 280.
//
// Emoji sequences are recognised with Unicode's grapheme clusters (uniseg) rather than with the emoji
// table that twitter-text 3.1.0 bundles (twemoji-parser 11, Unicode 12): a ZWJ sequence newer than that
// table (🐦‍⬛, 🧑‍🦰) counts 2 here, as one emoji, where twitter-text 3.1.0 counts its parts. Every
// sequence that table knows counts the same (testdata/corpus.json holds the cases and their origin).
package tweetlen

import (
	_ "embed"
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"golang.org/x/text/unicode/norm"
)

// configJSON is twitter-text's config/v3.json, unchanged.
//
//go:embed config-v3.json
var configJSON []byte

// Config is twitter-text's weighting configuration.
type Config struct {
	MaxWeightedTweetLength int  `json:"maxWeightedTweetLength"`
	Scale                  int  `json:"scale"`
	DefaultWeight          int  `json:"defaultWeight"`
	EmojiParsingEnabled    bool `json:"emojiParsingEnabled"`
	TransformedURLLength   int  `json:"transformedURLLength"`
	Ranges                 []struct {
		Start  rune `json:"start"`
		End    rune `json:"end"`
		Weight int  `json:"weight"`
	} `json:"ranges"`
}

// V3 is the configuration X uses today (twitter-text config/v3.json).
var V3 = mustConfig(configJSON)

// MaxLength is the longest weighted length X accepts.
var MaxLength = V3.MaxWeightedTweetLength

func mustConfig(b []byte) Config {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		panic("tweetlen: config-v3.json: " + err.Error())
	}
	if c.Scale <= 0 || c.DefaultWeight <= 0 || c.MaxWeightedTweetLength <= 0 {
		panic("tweetlen: config-v3.json: missing scale, default weight or maximum")
	}
	return c
}

// Count returns text's weighted length under the v3 configuration.
func Count(text string) int { return V3.Count(text) }

// Valid reports whether X accepts text's length: not empty, at most MaxLength. (It does not judge the
// characters; the gateway's own checks refuse control characters.)
func Valid(text string) bool {
	n := Count(text)
	return n > 0 && n <= MaxLength
}

// Count returns text's weighted length under c.
func (c Config) Count(text string) int {
	if n, ok := c.countASCII(text); ok {
		return n
	}
	return c.count(text)
}

// countASCII counts plain ASCII that cannot hold a URL, the common case, without normalising, looking for
// URLs or segmenting graphemes: NFC leaves ASCII alone, a URL needs a dot directly followed by its top-level
// domain (so a dot followed by a letter or digit sends the text to the full count, while sentence dots and
// ellipses do not), and no ASCII cluster is an emoji, so the weighted length is the sum of the characters'
// weights. The full count was a quarter of the gateway's CPU per request.
func (c Config) countASCII(text string) (int, bool) {
	total := 0
	for i := 0; i < len(text); i++ {
		b := text[i]
		if b >= 0x80 || b == '.' && i+1 < len(text) && isAlnum(text[i+1]) {
			return 0, false
		}
		total += c.weight(rune(b))
	}
	return total / c.Scale, true
}

// count is the full count: NFC, URLs, emoji sequences, weights.
func (c Config) count(text string) int {
	s := norm.NFC.String(text)
	total := 0 // in units of 1/Scale, as twitter-text adds them
	for _, seg := range splitURLs(s) {
		if seg.url {
			total += c.TransformedURLLength * c.Scale
			continue
		}
		total += c.countPlain(seg.text)
	}
	return total / c.Scale
}

// countPlain weighs text that holds no URL: an emoji sequence as one default-weight character, anything
// else code point by code point.
func (c Config) countPlain(s string) int {
	total := 0
	state := -1
	for len(s) > 0 {
		var cluster string
		cluster, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
		if c.EmojiParsingEnabled && isEmojiSequence(cluster) {
			total += c.DefaultWeight
			continue
		}
		for _, r := range cluster {
			total += c.weight(r)
		}
	}
	return total
}

// weight is a code point's weight. twitter-text looks at UTF-16 code units, so a code point outside
// the Basic Multilingual Plane is weighed by its low surrogate, which no range covers: the default.
func (c Config) weight(r rune) int {
	if r > 0xFFFF {
		return c.DefaultWeight
	}
	for _, rg := range c.Ranges {
		if r >= rg.Start && r <= rg.End {
			return rg.Weight
		}
	}
	return c.DefaultWeight
}

// isEmojiSequence reports whether a grapheme cluster of several code points is one emoji as twemoji
// sees it: a base followed by a variation selector, a skin tone, a keycap, tag characters or a ZWJ
// joining another emoji, or a pair of regional indicators (a flag). A single code point is never one:
// weighing it by its code point gives the same 1 or 2 twemoji would (© and ® alone are 1 for both).
// Letters with combining marks, or a letter with a stray selector, are not emoji and are weighed
// code point by code point, as twitter-text does.
func isEmojiSequence(cluster string) bool {
	first, size := utf8.DecodeRuneInString(cluster)
	if size == len(cluster) {
		return false
	}
	keycapBase := first == '#' || first == '*' || (first >= '0' && first <= '9')
	if first < 0x80 && !keycapBase {
		return false
	}
	if unicode.IsLetter(first) || unicode.Is(unicode.M, first) {
		return false
	}
	rest := cluster[size:]
	switch {
	case keycapBase:
		return strings.ContainsRune(rest, 0x20E3)
	case isRegionalIndicator(first):
		r, _ := utf8.DecodeRuneInString(rest)
		return isRegionalIndicator(r)
	}
	for i, r := range rest {
		switch {
		case r == 0xFE0F, r == 0x20E3, r >= 0x1F3FB && r <= 0x1F3FF, r >= 0xE0020 && r <= 0xE007F:
			return true
		case r == 0x200D && i+utf8.RuneLen(r) < len(rest):
			// A ZWJ followed by more of the same cluster joins two pictographs (grapheme rule GB11); a
			// trailing one joins nothing and is weighed on its own.
			return true
		}
	}
	return false
}

func isRegionalIndicator(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }
