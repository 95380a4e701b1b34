package humantext_test

import (
	"errors"
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/humantext"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		line      bool // CheckLine accepts it
		multiline bool // CheckMultiline accepts it
		index     int  // where the problem is, when refused
	}{
		{"plain", "Hello, world", true, true, 0},
		{"accents and emoji", "Café 👋 ✓", true, true, 0},
		{"right-to-left with a mark", "שלום\u200fworld", true, true, 0},
		{"line feed", "a\nb", false, true, 2},
		{"tab", "a\tb", false, true, 2},
		{"windows line end", "a\r\nb", false, true, 2},
		{"bare carriage return", "a\rb", false, false, 2},
		{"carriage return at the end", "ab\r", false, false, 3},
		{"NUL", "a\x00b", false, false, 2},
		{"escape", "\x1b[31mred", false, false, 1},
		{"delete", "a\x7f", false, false, 2},
		{"C1 control", "a\u0085b", false, false, 2},
		{"right-to-left override", "abc\u202Egnp.exe", false, false, 4},
		{"isolate", "\u2066x", false, false, 1},
		{"invalid UTF-8", "a\xffb", false, false, 0},
		{"lone surrogate bytes", "a\xed\xa0\x80b", false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct {
				fn   func(string) error
				name string
				ok   bool
			}{{humantext.CheckLine, "CheckLine", tt.line}, {humantext.CheckMultiline, "CheckMultiline", tt.multiline}} {
				err := c.fn(tt.in)
				if c.ok {
					if err != nil {
						t.Errorf("%s(%q) = %v, want nil", c.name, tt.in, err)
					}
					continue
				}
				var p *humantext.Problem
				if !errors.As(err, &p) || !errors.Is(err, humantext.ErrBadText) {
					t.Fatalf("%s(%q) = %v, want a *Problem wrapping ErrBadText", c.name, tt.in, err)
				}
				// Where CheckLine and CheckMultiline both refuse, they point at the same character unless
				// CheckLine stopped earlier at a newline or tab.
				if c.name == "CheckMultiline" && p.Index != tt.index {
					t.Errorf("%s(%q) points at character %d, want %d (%v)", c.name, tt.in, p.Index, tt.index, err)
				}
			}
		})
	}
}
