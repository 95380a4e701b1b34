package tweetlen_test

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/tweetlen"
)

// TestCorpus holds the counter to twitter-text's parseTweet (npm twitter-text, config v3) on
// testdata/corpus.json, which scripts/connector/tweetlen-corpus.js computed from corpus-input.json.
func TestCorpus(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/corpus.json")
	if err != nil {
		t.Fatal(err)
	}
	var corpus struct {
		Cases []struct {
			Name           string `json:"name"`
			Text           string `json:"text"`
			WeightedLength int    `json:"weightedLength"`
			Valid          bool   `json:"valid"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &corpus); err != nil {
		t.Fatal(err)
	}
	if len(corpus.Cases) < 40 {
		t.Fatalf("corpus has %d cases; regenerate it", len(corpus.Cases))
	}
	for _, c := range corpus.Cases {
		t.Run(c.Name, func(t *testing.T) {
			if got := tweetlen.Count(c.Text); got != c.WeightedLength {
				t.Errorf("Count(%q) = %d, twitter-text says %d", c.Text, got, c.WeightedLength)
			}
			if got := tweetlen.Valid(c.Text); got != c.Valid {
				t.Errorf("Valid(%q) = %v, twitter-text says %v", c.Text, got, c.Valid)
			}
		})
	}
}

// TestConformance runs twitter-text's own conformance cases for config v3 (testdata/validate-v3.yml,
// copied from its validate.yml).
func TestConformance(t *testing.T) {
	t.Parallel()
	cases := readConformance(t, "testdata/validate-v3.yml")
	if len(cases) < 20 {
		t.Fatalf("read %d cases from validate-v3.yml, want every one", len(cases))
	}
	for _, c := range cases {
		t.Run(c.section+"/"+c.description, func(t *testing.T) {
			if got := tweetlen.Count(c.text); got != c.weightedLength {
				t.Errorf("Count(%q) = %d, want %d", c.text, got, c.weightedLength)
			}
		})
	}
}

// TestNewerEmoji pins where the counter knowingly differs from twitter-text 3.1.0: ZWJ sequences newer
// than its emoji table (Unicode 12) are one emoji here, as Unicode's grapheme rules make them.
func TestNewerEmoji(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		want       int // twitter-text 3.1.0 says 5 for each
	}{
		{"black bird", "🐦‍⬛", 2},
		{"person with red hair", "🧑‍🦰", 2},
		{"head shaking horizontally", "🙂‍↔️", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tweetlen.Count(tt.text); got != tt.want {
				t.Errorf("Count(%q) = %d, want %d", tt.text, got, tt.want)
			}
		})
	}
}

type conformanceCase struct {
	section, description, text string
	weightedLength             int
}

// readConformance reads the few keys the test needs from twitter-text's YAML, whose layout is regular
// enough that a YAML library is not worth a dependency: double-quoted strings with Go-compatible
// escapes, one key a line.
func readConformance(t *testing.T, path string) []conformanceCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []conformanceCase
	var section string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	unquote := func(v string) string {
		s, err := strconv.Unquote(v)
		if err != nil {
			t.Fatalf("%s: %v in %.60s", path, err, v)
		}
		return s
	}
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && strings.HasSuffix(trimmed, ":"):
			section = strings.TrimSuffix(trimmed, ":")
		case strings.HasPrefix(trimmed, "- description:"):
			cases = append(cases, conformanceCase{section: section, description: unquote(strings.TrimSpace(strings.TrimPrefix(trimmed, "- description:")))})
		case strings.HasPrefix(trimmed, "text:"):
			cases[len(cases)-1].text = unquote(strings.TrimSpace(strings.TrimPrefix(trimmed, "text:")))
		case strings.HasPrefix(trimmed, "weightedLength:"):
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(trimmed, "weightedLength:")))
			if err != nil {
				t.Fatal(err)
			}
			cases[len(cases)-1].weightedLength = n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}
