package httpapi

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{name: "no proxies configured: the peer, whatever the header", remote: "10.0.0.1:443", xff: []string{"203.0.113.9"}, want: "10.0.0.1"},
		{name: "untrusted peer: its header is ignored", remote: "198.51.100.1:443", xff: []string{"203.0.113.9"}, trusted: trusted, want: "198.51.100.1"},
		{name: "trusted peer without a header", remote: "10.0.0.1:443", trusted: trusted, want: "10.0.0.1"},
		{name: "trusted peer: the address it saw", remote: "10.0.0.1:443", xff: []string{"203.0.113.9"}, trusted: trusted, want: "203.0.113.9"},
		{name: "client-written entries left of it are ignored", remote: "10.0.0.1:443", xff: []string{"1.2.3.4, 203.0.113.9"}, trusted: trusted, want: "203.0.113.9"},
		{name: "a chain of trusted proxies is walked", remote: "10.0.0.1:443", xff: []string{"1.2.3.4, 203.0.113.9, 10.1.1.1, 10.2.2.2"}, trusted: trusted, want: "203.0.113.9"},
		{name: "several header lines form one list", remote: "10.0.0.1:443", xff: []string{"1.2.3.4", "203.0.113.9", "10.2.2.2"}, trusted: trusted, want: "203.0.113.9"},
		{name: "only trusted proxies: the furthest", remote: "10.0.0.1:443", xff: []string{"10.3.3.3, 10.2.2.2"}, trusted: trusted, want: "10.3.3.3"},
		{name: "garbage stops the walk at the last trusted hop", remote: "10.0.0.1:443", xff: []string{"203.0.113.9, bogus, 10.2.2.2"}, trusted: trusted, want: "10.2.2.2"},
		{name: "an entry with a port", remote: "10.0.0.1:443", xff: []string{"203.0.113.9:5555"}, trusted: trusted, want: "203.0.113.9"},
		{name: "IPv6 peer and client", remote: "[2001:db8::1]:443", xff: []string{"2001:db9::7"}, trusted: trusted, want: "2001:db9::7"},
		{name: "IPv4-mapped peer", remote: "[::ffff:10.0.0.1]:443", xff: []string{"203.0.113.9"}, trusted: trusted, want: "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, tt.trusted); got != tt.want {
				t.Errorf("clientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      []string
		want    []netip.Prefix
		wantErr bool
	}{
		{in: nil, want: nil},
		{in: []string{"10.0.0.0/8", " 192.0.2.7 ", "", "2001:db8::/32"}, want: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32"),
		}},
		{in: []string{"10.1.2.3/8"}, want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{in: []string{"proxy.example"}, wantErr: true},
		{in: []string{"10.0.0.0/33"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseTrustedProxies(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseTrustedProxies(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("ParseTrustedProxies(%q) = %v, want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseTrustedProxies(%q) = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}
