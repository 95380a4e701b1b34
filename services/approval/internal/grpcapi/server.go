// Package grpcapi exposes the approval service over gRPC: ApprovalService and AdminService, with server
// reflection and grpc.health.v1. It converts between protobuf and the domain and maps domain errors to
// status codes, all in this one package.
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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
	"github.com/heraldhq/herald/services/heraldshared/requestid"
)

// Tokens are the bearer tokens the server accepts. Admin may call everything; Gateway may call
// ApprovalService only.
type Tokens struct {
	Admin   string
	Gateway string
}

// The names of the tokens, as grpcauth.Caller reports them.
const (
	callerAdmin   = "admin"
	callerGateway = "gateway"
)

// NewServer returns a gRPC server with both services, health and reflection registered, and the health
// server so that the caller can report NOT_SERVING while draining. transport says whether it serves TLS
// and whether tokens may arrive in plaintext from other machines. The extra interceptors (metrics, say)
// run before logging and authorisation.
func NewServer(svc *approval.Service, tokens Tokens, transport grpcauth.ServerTransport, log *slog.Logger, extra ...grpc.UnaryServerInterceptor) (*grpc.Server, *health.Server, error) {
	if svc == nil || log == nil {
		return nil, nil, errors.New("grpcapi: nil service or logger")
	}
	auth, err := grpcauth.New(
		map[string]string{callerAdmin: tokens.Admin, callerGateway: tokens.Gateway},
		map[string][]string{
			approvalv1.ApprovalService_ServiceDesc.ServiceName: {callerAdmin, callerGateway},
			approvalv1.AdminService_ServiceDesc.ServiceName:    {callerAdmin},
		},
		nil, // logging, below, already logs refused calls
		grpcauth.AllowPlaintextTokens(transport.AllowPlaintextTokens),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("grpcapi: %w", err)
	}
	srv := grpc.NewServer(append(transport.ServerOptions(),
		grpc.ChainUnaryInterceptor(append(extra, logging(log), auth.Unary())...),
		grpc.ChainStreamInterceptor(auth.Stream()),
	)...)
	approvalv1.RegisterApprovalServiceServer(srv, &approvalServer{svc: svc})
	approvalv1.RegisterAdminServiceServer(srv, &adminServer{svc: svc})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv, hs, nil
}

func logging(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			code := status.Code(err)
			level := slog.LevelInfo
			if code == codes.Internal || code == codes.Unknown {
				level = slog.LevelError
			}
			attrs := []any{"method", info.FullMethod, "code", code.String(), "err", err}
			if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(requestid.MetadataKey)) > 0 {
				attrs = append(attrs, "request_id", md.Get(requestid.MetadataKey)[0])
			}
			log.Log(ctx, level, "grpc call failed", attrs...)
		}
		return resp, err
	}
}

// toStatus maps a domain error to a gRPC status. It is the one place where that mapping lives.
func toStatus(err error) error {
	var code codes.Code
	switch {
	case err == nil:
		return nil
	case errors.Is(err, approval.ErrOtherDepartment):
		// Not NOT_FOUND: the gateway answers "pending" for a post it issued moments ago that the approval
		// service has not recorded yet, and must not for another department's post, which stays a 404.
		// Post ids are unguessable, so telling that the id exists says next to nothing.
		code = codes.PermissionDenied
	case errors.Is(err, approval.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, approval.ErrAlreadyExists):
		code = codes.AlreadyExists
	case errors.Is(err, approval.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, approval.ErrUnauthorized):
		code = codes.Unauthenticated
	case errors.Is(err, approval.ErrTokenUsed), errors.Is(err, approval.ErrTokenExpired), errors.Is(err, approval.ErrClosed),
		errors.Is(err, approval.ErrLinkRevoked), errors.Is(err, approval.ErrLinkReplaced), errors.Is(err, approval.ErrAlreadyAnswered),
		errors.Is(err, approval.ErrSelfApproval):
		code = codes.FailedPrecondition
	case errors.Is(err, approval.ErrWebhooksOff):
		code = codes.Unimplemented
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	default:
		// Internal details (SQL, paths) stay in the log; the caller gets a plain message.
		return status.Error(codes.Internal, "internal error")
	}
	return status.Error(code, err.Error())
}
