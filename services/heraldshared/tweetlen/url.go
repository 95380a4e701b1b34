package tweetlen

import (
	_ "embed"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// tldList is generated from twitter-text's validGTLD and validCCTLD by
// scripts/connector/tweetlen-tlds.js.
//
//go:embed tlds.txt
var tldList string

var tlds = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(tldList, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			m[l] = true
		}
	}
	return m
}()

// segment is a piece of text that is a URL or holds none.
type segment struct {
	text string
	url  bool
}

// splitURLs cuts s into URLs and the text between them. It follows twitter-text's extractUrl
// expression: an optional http:// or https://, a domain whose last label is a known TLD, an optional
// port, path and query whose trailing punctuation is left out; without a protocol only Latin domains
// count and a preceding "-", "_", "." or "/" disqualifies the URL; a domain label longer than 63
// characters once punycoded makes the whole candidate plain text.
func splitURLs(s string) []segment {
	if !strings.Contains(s, ".") {
		return []segment{{text: s}}
	}
	var out []segment
	plainFrom := 0
	for i := 0; i < len(s); {
		if !validPreceding(s, i) {
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
			continue
		}
		start, end, skip, ok := matchURL(s, i)
		if !ok {
			if skip > i {
				i = skip
				continue
			}
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
			continue
		}
		if start > plainFrom {
			out = append(out, segment{text: s[plainFrom:start]})
		}
		out = append(out, segment{text: s[start:end], url: true})
		plainFrom, i = end, end
	}
	if plainFrom < len(s) {
		out = append(out, segment{text: s[plainFrom:]})
	}
	return out
}

// validPreceding is twitter-text's validUrlPrecedingChars: a URL starts the text or follows anything
// but a letter or digit of ASCII, @, $ or # (and their full-width forms).
func validPreceding(s string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	case r == '@', r == '＠', r == '$', r == '#', r == '＃':
		return false
	}
	return true
}

// matchURL tries to match a URL starting at i. It returns the URL's bounds, or, when a candidate was
// found but is not a valid URL, where to go on scanning (twitter-text resumes after the candidate).
func matchURL(s string, i int) (start, end, skip int, ok bool) {
	j := i
	hasProtocol := false
	lower := strings.ToLower(s[i:min(len(s), i+8)])
	switch {
	case strings.HasPrefix(lower, "https://"):
		j, hasProtocol = i+8, true
	case strings.HasPrefix(lower, "http://"):
		j, hasProtocol = i+7, true
	}
	// Labels: runs of domain characters separated by single dots.
	type label struct{ from, to int }
	var labels []label
	k := j
	for {
		from := k
		for k < len(s) {
			r, n := utf8.DecodeRuneInString(s[k:])
			if !domainChar(r) && r != '-' && r != '_' {
				break
			}
			k += n
		}
		if k == from {
			break
		}
		labels = append(labels, label{from, k})
		if k < len(s) && s[k] == '.' {
			k++
			continue
		}
		break
	}
	// The longest run of labels that ends in a known TLD not followed by [a-z0-9@+-] (twitter-text's
	// lookahead after the TLD).
	last := -1
	for n := len(labels); n >= 2; n-- {
		tld := s[labels[n-1].from:labels[n-1].to]
		if !tlds[strings.ToLower(tld)] && !strings.HasPrefix(strings.ToLower(tld), "xn--") {
			continue
		}
		if after := labels[n-1].to; after < len(s) {
			if r, _ := utf8.DecodeRuneInString(s[after:]); r == '@' || r == '+' || r == '-' || r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				continue
			}
		}
		last = n
		break
	}
	if last < 0 {
		return 0, 0, 0, false
	}
	labels = labels[:last]
	for _, l := range labels {
		t := s[l.from:l.to]
		if strings.IndexFunc(t[:1], isHyphenOrUnderscore) == 0 || strings.LastIndexFunc(t, isHyphenOrUnderscore) == len(t)-1 {
			return 0, 0, 0, false
		}
	}
	// A domain without protocol must be Latin; twitter-text keeps its Latin tail ("日本.example.com"
	// yields "example.com").
	first := 0
	if !hasProtocol {
		if r, _ := utf8.DecodeLastRuneInString(s[:i]); i > 0 && (r == '-' || r == '_' || r == '.' || r == '/') {
			return 0, 0, 0, false
		}
		first = len(labels)
		for first > 0 && latinLabel(s[labels[first-1].from:labels[first-1].to]) {
			first--
		}
		if len(labels)-first < 2 {
			return 0, 0, 0, false
		}
	}
	start = i
	if !hasProtocol {
		start = labels[first].from
	}
	domain := s[labels[0].from:labels[len(labels)-1].to]
	end = labels[len(labels)-1].to
	// Port.
	if end+1 < len(s) && s[end] == ':' && isDigit(s[end+1]) {
		e := end + 1
		for e < len(s) && isDigit(s[e]) {
			e++
		}
		end = e
	}
	// Path and query.
	if end < len(s) && s[end] == '/' {
		end = matchPath(s, end)
	}
	if end < len(s) && s[end] == '?' {
		end = matchQuery(s, end)
	}
	length := end - start // with its protocol, or with the https:// twitter-text assumes
	if !hasProtocol {
		length += len("https://")
	}
	if !validDomainLength(domain) || length > 4096 {
		return 0, 0, end, false
	}
	return start, end, end, true
}

// matchPath returns where a path starting with "/" at i ends: after the last character a path may end
// with (a letter, digit, "+-=_#/" or a balanced closing parenthesis), so that "example.com/a." or
// "(see example.com/a)" leave their punctuation out.
func matchPath(s string, i int) int {
	end := i + 1 // the slash alone is a path
	depth := 0
	for k := i + 1; k < len(s); {
		r, n := utf8.DecodeRuneInString(s[k:])
		switch {
		case r == '(':
			if depth == 2 {
				return end
			}
			depth++
		case r == ')':
			if depth == 0 {
				return end
			}
			depth--
			if depth == 0 {
				end = k + n
			}
		case pathEndingChar(r):
			if depth == 0 {
				end = k + n
			}
		case pathChar(r):
		default:
			return end
		}
		k += n
	}
	return end
}

// matchQuery returns where a query starting with "?" at i ends, or i when no valid query follows.
func matchQuery(s string, i int) int {
	end := i
	for k := i + 1; k < len(s); k++ {
		c := s[k]
		switch {
		case isAlnum(c) || strings.IndexByte("-_&=#/", c) >= 0:
			end = k + 1
		case strings.IndexByte("!?*'@();:+$%[].,~|", c) >= 0:
		default:
			return end
		}
	}
	return end
}

func pathChar(r rune) bool {
	return pathEndingChar(r) || strings.ContainsRune("!*';:=+,.$/%#[]-–_~@|&", r)
}

func pathEndingChar(r rune) bool {
	return r < 0x80 && (isAlnum(byte(r)) || strings.ContainsRune("+-=_#/", r)) || latinAccent(r) || r >= 0x400 && r <= 0x4FF
}

// domainChar is twitter-text's validDomainChars: anything but punctuation, spaces, invalid characters
// and directional marks.
func domainChar(r rune) bool {
	if r < 0x80 {
		return isAlnum(byte(r))
	}
	switch {
	case unicode.IsSpace(r), unicode.IsControl(r), r == 0xFFFE, r == 0xFEFF, r == 0xFFFF:
		return false
	case r == 0x061C, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return false
	}
	return true
}

func latinLabel(l string) bool {
	for _, r := range l {
		if !(r < 0x80 && (isAlnum(byte(r)) || r == '-') || latinAccent(r)) {
			return false
		}
	}
	return true
}

// latinAccent is twitter-text's latinAccentChars.
func latinAccent(r rune) bool {
	switch {
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x24F,
		r == 0x253, r == 0x254, r == 0x256, r == 0x257, r == 0x259, r == 0x25B, r == 0x263, r == 0x268,
		r == 0x26F, r == 0x272, r == 0x289, r == 0x28B, r == 0x2BB, r >= 0x300 && r <= 0x36F, r >= 0x1E00 && r <= 0x1EFF:
		return true
	}
	return false
}

// validDomainLength is twitter-text's idna check: every label, punycoded, is 1 to 63 characters.
func validDomainLength(domain string) bool {
	for _, l := range strings.Split(domain, ".") {
		a, err := idna.Punycode.ToASCII(l)
		if err != nil {
			a = l
		}
		if len(a) < 1 || len(a) > 63 {
			return false
		}
	}
	return true
}

func isHyphenOrUnderscore(r rune) bool { return r == '-' || r == '_' }
func isDigit(c byte) bool              { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
