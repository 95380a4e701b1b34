// Package grpcapi exposes the publisher's ledger to ops over gRPC (PublisherService), with server
// reflection and grpc.health.v1. Domain errors become status codes here and nowhere else.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

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

// NewServer returns a gRPC server for the ledger whose PublisherService calls need adminToken. transport
// says whether it serves TLS and whether the token may arrive in plaintext from other machines. The extra
// interceptors (metrics, say) run before authorisation.
func NewServer(store ledger.Store, adminToken string, transport grpcauth.ServerTransport, log *slog.Logger, extra ...grpc.UnaryServerInterceptor) (*grpc.Server, *health.Server, error) {
	if store == nil || log == nil {
		return nil, nil, errors.New("grpcapi: nil store or logger")
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
	publisherv1.RegisterPublisherServiceServer(srv, &server{store: store})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv, hs, nil
}

type server struct {
	publisherv1.UnimplementedPublisherServiceServer
	store ledger.Store
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
	return &publisherv1.GetPublicationResponse{Publication: toProto(p)}, nil
}

func toStatus(err error) error {
	if errors.Is(err, ledger.ErrNotFound) {
		return status.Error(codes.NotFound, err.Error())
	}
	return status.Error(codes.Internal, "internal error")
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
