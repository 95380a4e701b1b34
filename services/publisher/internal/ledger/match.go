package ledger

import (
	"html"
	"regexp"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// urlPattern finds what X turns into a t.co link: URLs with a scheme, and bare domains such as
// example.com/path (twitter-text links those too). Trailing punctuation stays outside the link, as in
// twitter-text. It matches X's t.co links themselves, so both sides of a comparison lose their URLs alike.
var urlPattern = regexp.MustCompile(`(?i)\b(?:https?://)?(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}(?::\d+)?(?:/[^\s]*)?`)

// urlMark stands for any URL in a normalised text. It is a noncharacter, so no post contains it.
const urlMark = "\uFDD0"

// SameText reports whether stored, a post's text as the channel shows it, is sent, the text Herald
// posted. X stores text changed in ways that do not change what the post says: every URL becomes a t.co
// link, &, < and > come back as HTML entities, the text is NFC-normalised and surrounding space trimmed.
// Both texts are normalised that way, with every URL standing for any URL, and compared. Two texts that
// differ only in their URLs compare equal, which is why reconciliation only looks at posts created after
// the attempt began.
func SameText(stored, sent string) bool {
	return normalise(html.UnescapeString(stored)) == normalise(sent)
}

func normalise(s string) string {
	s = norm.NFC.String(s)
	s = urlPattern.ReplaceAllStringFunc(s, func(u string) string {
		// Trailing punctuation is not part of a link.
		trimmed := strings.TrimRight(u, ".,;:!?)]}'\"")
		return urlMark + u[len(trimmed):]
	})
	return strings.Join(strings.Fields(s), " ")
}

// mediaLink is the link X appends to the text of a post with pictures.
var mediaLink = regexp.MustCompile(`\s*https://t\.co/[A-Za-z0-9_-]+\s*$`)

// trimMediaLink removes the link X appends to a post with pictures.
func trimMediaLink(stored string) string { return mediaLink.ReplaceAllString(stored, "") }
