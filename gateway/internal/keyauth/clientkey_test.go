package keyauth

import "testing"

// TestBadKeysAreCountedPerIPv6Slash64: every address of one IPv6 /64 shares one count, IPv4 addresses
// (also written as IPv4-mapped IPv6) count alone.
func TestBadKeysAreCountedPerIPv6Slash64(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"192.0.2.1", "192.0.2.2", false},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.2", false},
		{"not an address", "not an address", true},
	}
	for _, tt := range tests {
		if got := clientKey(tt.a) == clientKey(tt.b); got != tt.same {
			t.Errorf("clientKey(%q) == clientKey(%q) is %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}
