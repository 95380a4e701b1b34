package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/seal"
)

func TestRunWritesKeyPair(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run([]string{"-out", dir, "-name", "approval"}, &out); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^key id: +([A-Za-z0-9_-]{16})$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output has no key id line:\n%s", out.String())
	}
	s, err := seal.LoadSigner(filepath.Join(dir, "approval.key"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.LoadKeyring(filepath.Join(dir, "approval.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != m[1] || ring.KeyIDs()[0] != m[1] {
		t.Errorf("printed key id %q, signer %q, keyring %v", m[1], s.KeyID(), ring.KeyIDs())
	}
	for file, want := range map[string]os.FileMode{"approval.key": 0o600, "approval.pub": 0o644} {
		info, err := os.Stat(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s has mode %04o, want %04o", file, got, want)
		}
	}
}

func TestRunRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := run([]string{"-out", dir, "-name", "approval"}, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "approval.key")
	before, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run([]string{"-out", dir, "-name", "approval"}, &out)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second run = %v, want an 'already exists' error", err)
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(before, after) {
		t.Error("the existing private key changed")
	}
	if out.Len() != 0 {
		t.Errorf("a refused run printed %q", out.String())
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string // empty: no error
	}{
		{"help", []string{"-h"}, ""},
		{"nothing", nil, "required"},
		{"no name", []string{"-out", t.TempDir()}, "required"},
		{"no dir", []string{"-name", "approval"}, "required"},
		{"unknown flag", []string{"-force"}, "-force"},
		{"extra argument", []string{"-out", t.TempDir(), "-name", "a", "b"}, "unexpected arguments"},
		{"bad name", []string{"-out", t.TempDir(), "-name", "../a"}, "key name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := run(tt.args, &out)
			if tt.wantErr == "" {
				if err != nil || !strings.Contains(out.String(), "usage:") {
					t.Fatalf("run(%q) = %v, output %q; want the usage", tt.args, err, out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}
