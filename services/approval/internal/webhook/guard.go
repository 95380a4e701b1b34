// Package webhook delivers the departments' webhook subscriptions over HTTP: Standard Webhooks v1
// signatures, a bounded timeout, no redirects, and a guard against server-side request forgery that
// checks a notification URL when it is registered and every address again when a connection is made,
// so that a name re-pointed at a private address after registration (DNS rebinding) is still refused.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
)

// Guard says which notification URLs and addresses Herald may call.
type Guard struct {
	// AllowHTTP lets a notification URL be plain http (an operator's choice; https otherwise).
	AllowHTTP bool
	// AllowLoopback lets deliveries reach loopback addresses (the local stack's demo, tests). Link-local
	// addresses, the cloud metadata service among them, are refused even then.
	AllowLoopback bool
	// Lookup resolves a host name at registration; nil uses net.DefaultResolver. (Connections resolve on
	// their own, and are checked by control whatever they resolve to.)
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// ErrRefusedAddress means an address is one Herald does not call: loopback, private, link-local,
// multicast, unspecified, or otherwise not a public unicast address.
var ErrRefusedAddress = errors.New("the address is not a public one")

// CheckAddr refuses every address a webhook must not reach.
func (g Guard) CheckAddr(a netip.Addr) error {
	a = a.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	switch {
	case !a.IsValid():
		return fmt.Errorf("%w: invalid address", ErrRefusedAddress)
	case a.IsLoopback():
		if g.AllowLoopback {
			return nil
		}
		return fmt.Errorf("%w: %s is a loopback address", ErrRefusedAddress, a)
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		// 169.254.0.0/16 holds the cloud metadata service (169.254.169.254); fe80::/10 its IPv6 kin.
		return fmt.Errorf("%w: %s is a link-local address", ErrRefusedAddress, a)
	case a.IsPrivate():
		return fmt.Errorf("%w: %s is a private address", ErrRefusedAddress, a)
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return fmt.Errorf("%w: %s is a multicast address", ErrRefusedAddress, a)
	case a.IsUnspecified():
		return fmt.Errorf("%w: %s is the unspecified address", ErrRefusedAddress, a)
	}
	for _, p := range refusedPrefixes {
		if p.Contains(a) {
			return fmt.Errorf("%w: %s is in %s", ErrRefusedAddress, a, p)
		}
	}
	return nil
}

// refusedPrefixes are the special-purpose ranges netip has no predicate for, whose addresses reach
// something other than the public internet: "this network", carrier-grade NAT (often the provider's
// own infrastructure), IETF protocol assignments, benchmarking, reserved and broadcast, and the IPv6
// ranges that embed IPv4 addresses (NAT64, 6to4, Teredo) and so could carry a private one through.
var refusedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("100::/64"),
}

// CheckURL refuses a notification URL whose scheme is not allowed or whose host resolves to any refused
// address. It is the check at registration; control checks again at every connection.
func (g Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("the URL does not parse")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !g.AllowHTTP {
			return errors.New("the URL must be https")
		}
	default:
		return errors.New("the URL must be https")
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return g.CheckAddr(a)
	}
	lookup := g.Lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	addrs, err := lookup(ctx, host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("the host %q does not resolve", host)
	}
	for _, a := range addrs {
		if err := g.CheckAddr(a); err != nil {
			return fmt.Errorf("%s resolves to a refused address: %w", host, err)
		}
	}
	return nil
}

// control is a net.Dialer Control hook: it runs on the address actually being connected to, after name
// resolution, so a name that resolved to a public address at registration and to a private one now is
// refused now.
func (g Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrRefusedAddress, address)
	}
	return g.CheckAddr(ap.Addr())
}
