package enumtest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/testenv/enumtest"
)

func TestStringConsts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := `package color

type Color string

const (
	Red   Color = "red"
	Green Color = "green"
	other       = "not a Color"
)

const Blue Color = "blue"
`
	if err := os.WriteFile(filepath.Join(dir, "color.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	test := "package color\n\nconst Fake Color = \"from a test file\"\n"
	if err := os.WriteFile(filepath.Join(dir, "color_test.go"), []byte(test), 0o600); err != nil {
		t.Fatal(err)
	}
	got := enumtest.StringConsts(t, dir, "Color")
	want := []string{"blue", "green", "red"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("StringConsts = %q, want %q", got, want)
	}
}
