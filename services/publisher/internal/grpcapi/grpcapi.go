// Package grpcapi exposes the publisher's ledger to ops over gRPC (PublisherService), with server
// reflection and grpc.health.v1. Domain errors become status codes here and nowhere else.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	publisherv1 "github.com/heraldhq/herald/proto/herald/publisher/v1"
	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// Ops is what ops may do to the ledger; *ledger.Service implements it.
type Ops interface {
	Retry(ctx context.Context, postID, note string) (ledger.Publication, error)
	Resolve(ctx context.Context, postID string, r ledger.Resolution) (ledger.Publication, error)
}

// ChannelInfo describes one channel for ListChannels.
type ChannelInfo struct {
	Name        string
	Username    string
	AccountID   string
	VerifyError string
	Rate        RateLimit
}

// RateLimit is a channel's rate-limit state as the channel last heard it.
type RateLimit struct {
	Limit, Remaining, InFlight int
	Reset                      time.Time
}

// Deps are what the server serves: the ledger's store for reading, its ops actions, and the channels.
type Deps struct {
	Store ledger.Store
	Ops   Ops
	// Channels describes the channels as they are now (their rate limits change).
	Channels func() []ChannelInfo
}

// NewServer returns a gRPC server for the ledger whose PublisherService calls need adminToken. transport
// says whether it serves TLS and whether the token may arrive in plaintext from other machines. The extra
// interceptors (metrics, say) run before authorisation.
func NewServer(d Deps, adminToken string, transport grpcauth.ServerTransport, log *slog.Logger, extra ...grpc.UnaryServerInterceptor) (*grpc.Server, *health.Server, error) {
	if d.Store == nil || d.Ops == nil || d.Channels == nil || log == nil {
		return nil, nil, errors.New("grpcapi: nil store, ops, channels or logger")
	}
	auth, err := grpcauth.New(
		map[string]string{"admin": adminToken},
		map[string][]string{publisherv1.PublisherService_ServiceDesc.ServiceName: {"admin"}},
		log,
		grpcauth.AllowPlaintextTokens(transport.AllowPlaintextTokens),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("grpcapi: %w", err)
	}
	srv := grpc.NewServer(append(transport.ServerOptions(),
		grpc.ChainUnaryInterceptor(append(extra, auth.Unary())...),
		grpc.ChainStreamInterceptor(auth.Stream()),
	)...)
	publisherv1.RegisterPublisherServiceServer(srv, &server{store: d.Store, ops: d.Ops, channels: d.Channels})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv, hs, nil
}

type server struct {
	publisherv1.UnimplementedPublisherServiceServer
	store    ledger.Store
	ops      Ops
	channels func() []ChannelInfo
}

func (s *server) ListPublications(ctx context.Context, req *publisherv1.ListPublicationsRequest) (*publisherv1.ListPublicationsResponse, error) {
	limit := int(req.GetPageSize())
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	ps, err := s.store.List(ctx, limit)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &publisherv1.ListPublicationsResponse{}
	for _, p := range ps {
		resp.Publications = append(resp.Publications, toProto(p))
	}
	return resp, nil
}

func (s *server) GetPublication(ctx context.Context, req *publisherv1.GetPublicationRequest) (*publisherv1.GetPublicationResponse, error) {
	if req.GetPostId() == "" {
		return nil, status.Error(codes.InvalidArgument, "post_id is required")
	}
	p, err := s.store.Get(ctx, req.GetPostId())
	if err != nil {
		return nil, toStatus(err)
	}
	audit, err := s.store.ListAudit(ctx, req.GetPostId())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &publisherv1.GetPublicationResponse{Publication: toProto(p)}
	for _, a := range audit {
		resp.Audit = append(resp.Audit, &publisherv1.AuditEntry{
			Actor: a.Actor, Action: a.Action, FromState: states[a.From], ToState: states[a.To], RemoteId: a.RemoteID, Note: a.Note, At: timestamppb.New(a.At),
		})
	}
	return resp, nil
}

func (s *server) ListChannels(context.Context, *publisherv1.ListChannelsRequest) (*publisherv1.ListChannelsResponse, error) {
	resp := &publisherv1.ListChannelsResponse{}
	for _, c := range s.channels() {
		rl := &publisherv1.RateLimit{Limit: int32(c.Rate.Limit), Remaining: int32(c.Rate.Remaining), InFlight: int32(c.Rate.InFlight)}
		if !c.Rate.Reset.IsZero() {
			rl.ResetsAt = timestamppb.New(c.Rate.Reset)
		}
		resp.Channels = append(resp.Channels, &publisherv1.Channel{Name: c.Name, Username: c.Username, AccountId: c.AccountID, VerifyError: c.VerifyError, RateLimit: rl})
	}
	return resp, nil
}

func (s *server) RetryPublication(ctx context.Context, req *publisherv1.RetryPublicationRequest) (*publisherv1.RetryPublicationResponse, error) {
	if req.GetPostId() == "" {
		return nil, status.Error(codes.InvalidArgument, "post_id is required")
	}
	p, err := s.ops.Retry(ctx, req.GetPostId(), req.GetNote())
	if err != nil {
		return nil, toStatus(err)
	}
	return &publisherv1.RetryPublicationResponse{Publication: toProto(p)}, nil
}

func (s *server) ResolvePublication(ctx context.Context, req *publisherv1.ResolvePublicationRequest) (*publisherv1.ResolvePublicationResponse, error) {
	if req.GetPostId() == "" {
		return nil, status.Error(codes.InvalidArgument, "post_id is required")
	}
	var r ledger.Resolution
	switch v := req.GetVerdict().(type) {
	case *publisherv1.ResolvePublicationRequest_PublishedRemoteId:
		r = ledger.Resolution{Published: true, RemoteID: v.PublishedRemoteId}
	case *publisherv1.ResolvePublicationRequest_NotSent:
		if !v.NotSent {
			return nil, status.Error(codes.InvalidArgument, "not_sent must be true when given")
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "a verdict is required: published_remote_id or not_sent")
	}
	r.Note = req.GetNote()
	p, err := s.ops.Resolve(ctx, req.GetPostId(), r)
	if err != nil {
		return nil, toStatus(err)
	}
	return &publisherv1.ResolvePublicationResponse{Publication: toProto(p)}, nil
}

// toStatus is the one place where the ledger's errors become status codes.
func toStatus(err error) error {
	var later *ledger.RetryLaterError
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ledger.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ledger.ErrWrongState):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ledger.ErrConflict):
		return status.Error(codes.Aborted, err.Error())
	case errors.As(err, &later):
		// An ops retry that could not settle in time stays attempting; the caller looks again later.
		return status.Error(codes.Unavailable, err.Error()+"; the post is still being attempted, see GetPublication")
	default:
		return status.Error(codes.Internal, "internal error")
	}
}

var states = map[ledger.State]publisherv1.PublicationState{
	ledger.StateAttempting: publisherv1.PublicationState_PUBLICATION_STATE_ATTEMPTING,
	ledger.StatePublished:  publisherv1.PublicationState_PUBLICATION_STATE_PUBLISHED,
	ledger.StateFailed:     publisherv1.PublicationState_PUBLICATION_STATE_FAILED,
	ledger.StateUnknown:    publisherv1.PublicationState_PUBLICATION_STATE_UNKNOWN,
}

func toProto(p ledger.Publication) *publisherv1.Publication {
	return &publisherv1.Publication{
		PostId: p.PostID, Channel: p.Channel, State: states[p.State], Text: p.Text, RemoteId: p.RemoteID, Url: p.URL,
		Error: p.Error, CreatedAt: timestamppb.New(p.CreatedAt), UpdatedAt: timestamppb.New(p.UpdatedAt),
	}
}
