package grpcauth

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
)

// PlaintextMessage is the message of a call refused because it carried a bearer token over a connection
// without TLS from a peer that is not local.
const PlaintextMessage = "bearer tokens are refused over plaintext from a non-loopback peer: call this service over TLS " +
	"(or, when a service mesh encrypts the connection, set HERALD_ALLOW_PLAINTEXT_TOKENS=true on the server)"

// IsLocal reports whether addr stays on this machine: a loopback IP address, a Unix socket, or an
// in-process connection (grpc's bufconn, net.Pipe). A token sent over any of these never crosses a
// network. Everything else, including an address it cannot parse, is remote.
func IsLocal(addr net.Addr) bool {
	if addr == nil {
		return false
	}
	switch addr.Network() {
	case "unix", "unixgram", "unixpacket", "bufconn", "pipe":
		return true
	}
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UDPAddr:
		return a.IP.IsLoopback()
	case *net.IPAddr:
		return a.IP.IsLoopback()
	}
	ap, err := netip.ParseAddrPort(addr.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// secure reports whether a connection with this AuthInfo protects what it carries: TLS, or another
// transport that reports privacy and integrity (ALTS, say).
func secure(info credentials.AuthInfo) bool {
	if _, ok := info.(credentials.TLSInfo); ok {
		return true
	}
	// credentials.CheckSecurityLevel is not used: it counts an AuthInfo without a security level as
	// secure, which is the wrong way round for a check that guards secrets.
	c, ok := info.(interface {
		GetCommonAuthInfo() credentials.CommonAuthInfo
	})
	return ok && c.GetCommonAuthInfo().SecurityLevel == credentials.PrivacyAndIntegrity
}

// peerAddr is the peer's address for a log line.
func peerAddr(p *peer.Peer) string {
	if p == nil || p.Addr == nil {
		return "unknown"
	}
	return p.Addr.String()
}

// PlaintextInfo is the AuthInfo of a connection made with PlaintextCredentials: no security, and the
// address the connection actually reached, which CheckTransport needs to tell loopback from remote.
type PlaintextInfo struct {
	credentials.CommonAuthInfo
	// Remote is the server's address as the dialled connection reports it (after name resolution).
	Remote net.Addr
}

// AuthType names the transport, as grpc's insecure credentials do.
func (PlaintextInfo) AuthType() string { return "insecure" }

// PlaintextCredentials returns client transport credentials without TLS, like grpc's insecure ones, that
// record the server's address in a PlaintextInfo. Per-RPC credentials pass it to CheckTransport, which
// then lets a token go to a loopback server only: a decision on the resolved address rather than on the
// configured name, which could resolve anywhere.
func PlaintextCredentials() credentials.TransportCredentials {
	return plaintext{insecure.NewCredentials()}
}

type plaintext struct {
	credentials.TransportCredentials
}

func (p plaintext) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, _, err := p.TransportCredentials.ClientHandshake(ctx, authority, conn)
	if err != nil {
		return nil, nil, err
	}
	return c, PlaintextInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}, Remote: conn.RemoteAddr()}, nil
}

func (p plaintext) Clone() credentials.TransportCredentials {
	return plaintext{p.TransportCredentials.Clone()}
}

// CheckTransport returns nil when a client may send a bearer token on the connection whose AuthInfo is
// info (per-RPC credentials find it with credentials.RequestInfoFromContext): one with TLS, a plaintext
// one made with PlaintextCredentials to a local address, or any connection when allowPlaintext is set.
// Otherwise it returns an error naming the address, and the token must not be sent.
func CheckTransport(info credentials.AuthInfo, allowPlaintext bool) error {
	if allowPlaintext || secure(info) {
		return nil
	}
	if p, ok := info.(PlaintextInfo); ok {
		if IsLocal(p.Remote) {
			return nil
		}
		return fmt.Errorf("grpcauth: not sending a bearer token in plaintext to %s, which is not a loopback address", p.Remote)
	}
	// Plaintext from other credentials: the address is unknown, so the token stays home.
	return fmt.Errorf("grpcauth: not sending a bearer token over a %s connection without TLS to an address it cannot check", authType(info))
}

func authType(info credentials.AuthInfo) string {
	if info == nil {
		return "plaintext"
	}
	return info.AuthType()
}

// ServerTransport is how calls reach a gRPC server: over TLS when Creds is set (svcconfig.ServerTLS
// builds them), and whether bearer tokens may arrive in plaintext from peers that are not local.
type ServerTransport struct {
	// Creds secures the server's connections; nil serves plaintext.
	Creds credentials.TransportCredentials
	// AllowPlaintextTokens is AllowPlaintextTokens for the server's Authorizer.
	AllowPlaintextTokens bool
}

// ServerOptions are the grpc.NewServer options of t: its credentials, if any.
func (t ServerTransport) ServerOptions() []grpc.ServerOption {
	if t.Creds == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(t.Creds)}
}
