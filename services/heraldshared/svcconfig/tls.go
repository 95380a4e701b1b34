package svcconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"google.golang.org/grpc/credentials"

	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
)

// ServerTLS turns on TLS, and optionally mutual TLS, for one of a service's listeners, from certificate
// files. Each service embeds it under its own prefix: HERALD_APPROVAL_ and HERALD_PUBLISHER_ for the gRPC
// APIs, HERALD_GATEWAY_ for the gateway's HTTP listener. Unset, the listener serves plaintext, which is
// fine on loopback (the local stack) and for bearer tokens nowhere else (see PlaintextTokens).
type ServerTLS struct {
	// TLSCertFile and TLSKeyFile are the listener's certificate (chain) and private key, PEM; setting
	// them turns TLS on.
	TLSCertFile string `env:"TLS_CERT_FILE"`
	TLSKeyFile  string `env:"TLS_KEY_FILE"`
	// TLSClientCAFile makes the listener require a client certificate signed by this CA (PEM, one or
	// more certificates): mutual TLS.
	TLSClientCAFile string `env:"TLS_CLIENT_CA_FILE"`
}

// TLSEnabled reports whether the listener serves TLS.
func (s ServerTLS) TLSEnabled() bool {
	return s.TLSCertFile != "" || s.TLSKeyFile != "" || s.TLSClientCAFile != ""
}

// TLSConfig loads the files into a server configuration: nil, nil when TLS is off. Errors name the
// variables without their service's prefix (TLS_CERT_FILE); the caller adds it.
func (s ServerTLS) TLSConfig() (*tls.Config, error) {
	if !s.TLSEnabled() {
		return nil, nil
	}
	if s.TLSCertFile == "" || s.TLSKeyFile == "" {
		// A client CA alone would mean "mutual TLS" without a certificate to serve: refuse rather than
		// silently serve plaintext.
		return nil, errors.New("TLS_CERT_FILE and TLS_KEY_FILE are both required for TLS (TLS_CLIENT_CA_FILE adds mutual TLS to them)")
	}
	cert, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS_CERT_FILE, TLS_KEY_FILE: %w", err)
	}
	cfg := baseConfig()
	cfg.Certificates = []tls.Certificate{cert}
	if s.TLSClientCAFile != "" {
		pool, err := loadPool(s.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS_CLIENT_CA_FILE: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// GRPCTransport is the gRPC server's transport: TLS credentials from s (none when TLS is off), and the
// plaintext-token allowance from p.
func (s ServerTLS) GRPCTransport(p PlaintextTokens) (grpcauth.ServerTransport, error) {
	t := grpcauth.ServerTransport{AllowPlaintextTokens: p.AllowPlaintextTokens}
	cfg, err := s.TLSConfig()
	if err != nil {
		return t, err
	}
	if cfg != nil {
		t.Creds = credentials.NewTLS(cfg)
	}
	return t, nil
}

// ClientTLS is how the gateway reaches the approval service's gRPC API: over TLS when
// HERALD_APPROVAL_CA_FILE names the CA that signed the approval service's certificate, with a client
// certificate when the approval service requires one (mutual TLS).
type ClientTLS struct {
	// ApprovalCAFile is the CA (PEM) that signed the approval service's certificate; setting it turns
	// TLS on. The certificate must name the host of HERALD_APPROVAL_ADDR.
	ApprovalCAFile string `env:"HERALD_APPROVAL_CA_FILE"`
	// ClientCertFile and ClientKeyFile are the gateway's client certificate and key, PEM.
	ClientCertFile string `env:"HERALD_GATEWAY_CLIENT_CERT_FILE"`
	ClientKeyFile  string `env:"HERALD_GATEWAY_CLIENT_KEY_FILE"`
}

// TLSEnabled reports whether the client uses TLS.
func (c ClientTLS) TLSEnabled() bool { return c.ApprovalCAFile != "" }

// TransportCredentials are the client's gRPC transport credentials: TLS when enabled, otherwise
// grpcauth.PlaintextCredentials, which let per-RPC credentials see whether the server is on loopback.
func (c ClientTLS) TransportCredentials() (credentials.TransportCredentials, error) {
	if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		return nil, errors.New("HERALD_GATEWAY_CLIENT_CERT_FILE and HERALD_GATEWAY_CLIENT_KEY_FILE go together")
	}
	if !c.TLSEnabled() {
		if c.ClientCertFile != "" {
			// A client certificate only makes sense inside TLS: refuse rather than drop it silently.
			return nil, errors.New("HERALD_GATEWAY_CLIENT_CERT_FILE needs HERALD_APPROVAL_CA_FILE (TLS to the approval service)")
		}
		return grpcauth.PlaintextCredentials(), nil
	}
	cfg := baseConfig()
	pool, err := loadPool(c.ApprovalCAFile)
	if err != nil {
		return nil, fmt.Errorf("HERALD_APPROVAL_CA_FILE: %w", err)
	}
	cfg.RootCAs = pool
	if c.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("HERALD_GATEWAY_CLIENT_CERT_FILE, HERALD_GATEWAY_CLIENT_KEY_FILE: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}

// PlaintextTokens is the operator's word that bearer tokens may cross the network without TLS, because
// something else encrypts every hop (a service mesh adding mutual TLS). Without it, tokens travel only
// over TLS or loopback: servers refuse them otherwise, and the gateway does not send them.
type PlaintextTokens struct {
	AllowPlaintextTokens bool `env:"HERALD_ALLOW_PLAINTEXT_TOKENS"`
}

// Warn logs, once at start, that plaintext tokens are allowed: a choice that weakens the default should be
// visible in every service's log.
func (p PlaintextTokens) Warn(log *slog.Logger) {
	if p.AllowPlaintextTokens {
		log.Warn("HERALD_ALLOW_PLAINTEXT_TOKENS is set: bearer tokens are sent and accepted over plaintext connections to and from other machines; only safe when something else (a service mesh) encrypts them")
	}
}

// baseConfig is the TLS configuration every Herald endpoint shares: TLS 1.2 at least (1.3 is negotiated
// whenever both ends have it), and for TLS 1.2 only forward-secret AEAD suites (TLS 1.3's are not
// configurable and all fine).
func baseConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// loadPool reads a PEM file of one or more CA certificates.
func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
