// Package seal signs and verifies what Herald's services tell each other about a post, so that a
// message on NATS counts only if the service entitled to say it signed it. The approval service seals
// each approval with its private key and the publisher, which holds only public keys, refuses any
// approval that is unsealed, sealed by an unknown key, or sealed over other content than it is asked to
// post. The publisher seals its outcomes (published, failed, unknown) the same way for the approval
// service.
//
// A seal is an Ed25519 signature over a statement's canonical encoding, never over a protobuf or JSON
// message: those encodings are not canonical, and a signature must not depend on which library
// serialised the fields. The canonical encoding is a sequence of items, each a 4-byte big-endian
// unsigned length followed by that many bytes:
//
//  1. the statement's domain tag, "herald.seal.v1.Approval" or "herald.seal.v1.Outcome", so that a
//     signature over one kind of statement can never verify as another kind;
//  2. the statement's fields, in the order its type declares them: a string as its bytes (UTF-8, as
//     given), a SHA-256 hash as its 32 bytes, a time as the 8-byte big-endian two's-complement count of
//     microseconds since the Unix epoch (time.Time.UnixMicro; time zones and anything finer than a
//     microsecond are not signed), and a list of hashes as one item holding the count as a 4-byte
//     big-endian unsigned integer followed by one item per hash.
//
// testdata/ holds the encoding and signature of fixed statements, for implementations in other languages.
package seal

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Domain tags, the first item of each canonical encoding. The version is part of the tag so that a
// future encoding can never be confused with this one.
const (
	approvalDomain = "herald.seal.v1.Approval"
	outcomeDomain  = "herald.seal.v1.Outcome"
)

// States an Outcome names. A receiver sets Outcome.State from the kind of event it received (the
// subject or message type), never from a field an attacker chose, so a seal over a failure cannot be
// passed off as a publication.
const (
	StatePublished = "published"
	StateFailed    = "failed"
	StateUnknown   = "unknown"
)

// Statement is something a service signs. Only this package's types implement it, so that a Signer
// never signs bytes without a domain tag.
type Statement interface {
	// Canonical returns the bytes that are signed; see the package documentation for the encoding.
	Canonical() []byte
	// isStatement keeps other packages from implementing Statement.
	isStatement()
}

// Approval is what the approval service vouches for when a post may be published: exactly this text
// (by hash) and these media objects (by hash, in order), for this post and department, approved by this
// approver at this time.
type Approval struct {
	// PostID is the post's id.
	PostID string
	// DepartmentID is the id of the department that asked for the post.
	DepartmentID string
	// TextSHA256 is the SHA-256 of the final text's UTF-8 bytes (see TextHash). The verifier computes it
	// from the text it is about to post, so that any change to the text breaks the seal.
	TextSHA256 [32]byte
	// MediaSHA256 holds the SHA-256 of each media object, in the order they are attached. Nil and empty
	// encode the same.
	MediaSHA256 [][32]byte
	// Approver names the approver whose decision satisfied the policy.
	Approver string
	// ApprovedAt is when the decision was made; it is signed to the microsecond.
	ApprovedAt time.Time
}

// Canonical returns the bytes of a that are signed.
func (a Approval) Canonical() []byte {
	var e encoder
	e.string(approvalDomain)
	e.string(a.PostID)
	e.string(a.DepartmentID)
	e.item(a.TextSHA256[:])
	e.hashes(a.MediaSHA256)
	e.string(a.Approver)
	e.time(a.ApprovedAt)
	return e.buf
}

func (Approval) isStatement() {}

// Outcome is what the publisher vouches for when it reports what became of an approved post.
type Outcome struct {
	// PostID is the post's id.
	PostID string
	// Channel names the channel that carried, refused or may have carried the post, e.g. "x".
	Channel string
	// State is StatePublished, StateFailed or StateUnknown.
	State string
	// RemoteID is the channel's id for the post; empty unless published.
	RemoteID string
	// URL links to the post; empty unless published.
	URL string
	// Reason explains a failure or an unknown outcome; empty when published.
	Reason string
	// At is when the outcome happened; it is signed to the microsecond.
	At time.Time
}

// Canonical returns the bytes of o that are signed.
func (o Outcome) Canonical() []byte {
	var e encoder
	e.string(outcomeDomain)
	e.string(o.PostID)
	e.string(o.Channel)
	e.string(o.State)
	e.string(o.RemoteID)
	e.string(o.URL)
	e.string(o.Reason)
	e.time(o.At)
	return e.buf
}

func (Outcome) isStatement() {}

// TextHash returns the SHA-256 of text's UTF-8 bytes, as Approval.TextSHA256 and PostApproved.text_sha256
// carry it.
func TextHash(text string) [32]byte {
	return sha256.Sum256([]byte(text))
}

// encoder appends length-prefixed items.
type encoder struct {
	buf []byte
}

// item appends one length-prefixed item. An item of 4 GiB or more cannot be encoded; no message on
// NATS comes near that, so it is a programming error and panics rather than signing something ambiguous.
func (e *encoder) item(b []byte) {
	if uint64(len(b)) > math.MaxUint32 {
		panic(fmt.Sprintf("seal: a field of %d bytes is too long to encode", len(b)))
	}
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(b)))
	e.buf = append(e.buf, b...)
}

func (e *encoder) string(s string) { e.item([]byte(s)) }

func (e *encoder) time(t time.Time) {
	e.item(binary.BigEndian.AppendUint64(nil, uint64(t.UnixMicro())))
}

func (e *encoder) hashes(hs [][32]byte) {
	if uint64(len(hs)) > math.MaxUint32 {
		panic(fmt.Sprintf("seal: %d hashes are too many to encode", len(hs)))
	}
	e.item(binary.BigEndian.AppendUint32(nil, uint32(len(hs))))
	for _, h := range hs {
		e.item(h[:])
	}
}
