// Package humantext holds the rules for text that a person reads or that ends up in a header: a tweet, a
// requester, an approver's or a department's name. Text that breaks them is refused, never repaired:
// silently dropping a character would change what an approver approved.
package humantext

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ErrBadText is wrapped by every error of this package, so callers can tell a rule broken by the input
// from their own failures.
var ErrBadText = errors.New("text breaks the rules for human-readable text")

// Problem describes the first character that breaks a rule and where it is.
type Problem struct {
	// Reason says what is wrong, in words fit for the person who sent the text.
	Reason string
	// Index is the position of the offending character, counted in characters from 1 (0 for invalid UTF-8).
	Index int
}

// Error implements error.
func (p *Problem) Error() string {
	if p.Index == 0 {
		return p.Reason
	}
	return fmt.Sprintf("%s at character %d", p.Reason, p.Index)
}

// Unwrap makes errors.Is(err, ErrBadText) true.
func (p *Problem) Unwrap() error { return ErrBadText }

// CheckLine checks single-line text (names, addresses): valid UTF-8 with no control character at all
// and no bidirectional override, which could make an approver read something other than what is sent.
func CheckLine(s string) error { return check(s, false) }

// CheckMultiline checks text that may span lines (a tweet, a comment): like CheckLine, but line feeds,
// tabs, and carriage returns directly before a line feed (Windows line ends) are allowed.
func CheckMultiline(s string) error { return check(s, true) }

func check(s string, multiline bool) error {
	if !utf8.ValidString(s) {
		return &Problem{Reason: "is not valid UTF-8"}
	}
	i := 0
	for pos, r := range s {
		i++
		switch {
		case multiline && (r == '\n' || r == '\t'):
		case multiline && r == '\r' && pos+1 < len(s) && s[pos+1] == '\n':
		case unicode.IsControl(r):
			return &Problem{Reason: fmt.Sprintf("contains the control character %U", r), Index: i}
		case isBidiControl(r):
			return &Problem{Reason: fmt.Sprintf("contains the bidirectional formatting character %U, which can make the text display differently from what is sent", r), Index: i}
		}
	}
	return nil
}

// isBidiControl reports the embedding, override and isolate characters (U+202A–U+202E, U+2066–U+2069).
// Implicit marks (LRM, RLM, ALM) are left alone: right-to-left scripts need them and they cannot reorder
// text on their own.
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}
