package grpcapi

import (
	"context"
	"errors"
	"math"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"google.golang.org/protobuf/types/known/timestamppb"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
)

type approvalServer struct {
	approvalv1.UnimplementedApprovalServiceServer
	svc *approval.Service
}

// departmentScope returns the department a call reads: the one the request names. Only ops (the admin
// token) may leave it out and read across departments; the gateway's token, and any other, must name one,
// so that a stolen gateway token reads no more than one department's posts per guess of its id.
func departmentScope(ctx context.Context, departmentID string) (string, error) {
	if departmentID == "" && grpcauth.Caller(ctx) != callerAdmin {
		return "", status.Error(codes.PermissionDenied, "department_id is required: only the admin token reads across departments")
	}
	return departmentID, nil
}

func (s *approvalServer) GetPost(ctx context.Context, req *approvalv1.GetPostRequest) (*approvalv1.GetPostResponse, error) {
	dept, err := departmentScope(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, err
	}
	p, err := s.svc.GetPost(ctx, req.GetPostId(), dept)
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.GetPostResponse{Post: toProtoPost(p)}, nil
}

func (s *approvalServer) ListPosts(ctx context.Context, req *approvalv1.ListPostsRequest) (*approvalv1.ListPostsResponse, error) {
	dept, err := departmentScope(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, err
	}
	f := approval.PostFilter{DepartmentID: dept, Limit: int(req.GetPageSize()), WaitingForApprover: req.GetWaitingForApprover()}
	if req.GetStatus() != approvalv1.PostStatus_POST_STATUS_UNSPECIFIED {
		st, ok := fromProtoStatus[req.GetStatus()]
		if !ok {
			return nil, toStatus(approval.ErrInvalid)
		}
		f.Status = st
	}
	posts, err := s.svc.ListPosts(ctx, f)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &approvalv1.ListPostsResponse{Posts: make([]*approvalv1.Post, len(posts))}
	for i, p := range posts {
		resp.Posts[i] = toProtoPost(p)
	}
	return resp, nil
}

func (s *approvalServer) GetApproval(ctx context.Context, req *approvalv1.GetApprovalRequest) (*approvalv1.GetApprovalResponse, error) {
	v, err := s.svc.ViewApproval(ctx, req.GetToken())
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.GetApprovalResponse{
		Post:           toProtoPost(v.Post),
		ApproverEmail:  v.Approver.Email,
		ApproverName:   v.Approver.Name,
		DepartmentName: v.Department.Name,
		State:          linkStates[v.State],
		ExpiresAt:      ts(v.ExpiresAt),
	}, nil
}

func (s *approvalServer) Decide(ctx context.Context, req *approvalv1.DecideRequest) (*approvalv1.DecideResponse, error) {
	// An unspecified or unknown outcome becomes "", which the domain refuses as invalid.
	outcome := fromProtoOutcome[req.GetOutcome()]
	p, err := s.svc.DecideEdited(ctx, req.GetToken(), outcome, req.GetComment(), req.GetOrigin(), req.GetEditedText())
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.DecideResponse{Post: toProtoPost(p)}, nil
}

func (s *approvalServer) AuthenticateKey(ctx context.Context, req *approvalv1.AuthenticateKeyRequest) (*approvalv1.AuthenticateKeyResponse, error) {
	k, err := s.svc.AuthenticateKey(ctx, req.GetApiKey())
	if errors.Is(err, approval.ErrUnauthorized) {
		// NOT_FOUND rather than UNAUTHENTICATED: the caller (the gateway) is authenticated; it is the key
		// it asks about that matches nothing.
		return nil, status.Error(codes.NotFound, "no valid API key matches")
	}
	if err != nil {
		return nil, toStatus(err)
	}
	limits, err := s.svc.EffectiveLimits(ctx, k.DepartmentID)
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.AuthenticateKeyResponse{DepartmentId: k.DepartmentID, DepartmentName: k.DepartmentName, KeyId: k.ID, Limits: toProtoLimits(limits)}, nil
}

func (s *approvalServer) CountUndecided(ctx context.Context, req *approvalv1.CountUndecidedRequest) (*approvalv1.CountUndecidedResponse, error) {
	// The gateway's token counts one department at a time, like every other read it makes.
	dept, err := departmentScope(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, err
	}
	n, err := s.svc.CountUndecided(ctx, dept)
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.CountUndecidedResponse{Count: int32(min(n, math.MaxInt32))}, nil
}

func toProtoLimits(l approval.Limits) *approvalv1.DepartmentLimits {
	return &approvalv1.DepartmentLimits{PostsPerMinute: int32(l.PostsPerMinute), MaxUndecided: int32(l.MaxUndecided)}
}

func (s *approvalServer) CancelPost(ctx context.Context, req *approvalv1.CancelPostRequest) (*approvalv1.CancelPostResponse, error) {
	dept, err := departmentScope(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, err
	}
	actor := req.GetActor()
	if actor == "" {
		actor = grpcauth.Caller(ctx)
	}
	p, err := s.svc.CancelPost(ctx, req.GetPostId(), dept, actor, "department:"+dept)
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.CancelPostResponse{Post: toProtoPost(p)}, nil
}

var toProtoStatus = map[approval.Status]approvalv1.PostStatus{
	approval.StatusPending:   approvalv1.PostStatus_POST_STATUS_PENDING,
	approval.StatusApproved:  approvalv1.PostStatus_POST_STATUS_APPROVED,
	approval.StatusRejected:  approvalv1.PostStatus_POST_STATUS_REJECTED,
	approval.StatusPublished: approvalv1.PostStatus_POST_STATUS_PUBLISHED,
	approval.StatusFailed:    approvalv1.PostStatus_POST_STATUS_FAILED,
	approval.StatusUnknown:   approvalv1.PostStatus_POST_STATUS_UNKNOWN,
	approval.StatusExpired:   approvalv1.PostStatus_POST_STATUS_EXPIRED,
	approval.StatusCancelled: approvalv1.PostStatus_POST_STATUS_CANCELLED,
}

var fromProtoStatus = invert(toProtoStatus)

var toProtoOutcome = map[approval.Outcome]approvalv1.Outcome{
	approval.OutcomeApprove: approvalv1.Outcome_OUTCOME_APPROVE,
	approval.OutcomeReject:  approvalv1.Outcome_OUTCOME_REJECT,
}

var fromProtoOutcome = invert(toProtoOutcome)

// invert returns the reverse of a one-to-one mapping. The mapping tests check that each is one-to-one.
func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

var linkStates = map[approval.LinkState]approvalv1.ApprovalState{
	approval.LinkOpen:      approvalv1.ApprovalState_APPROVAL_STATE_OPEN,
	approval.LinkUsed:      approvalv1.ApprovalState_APPROVAL_STATE_USED,
	approval.LinkExpired:   approvalv1.ApprovalState_APPROVAL_STATE_EXPIRED,
	approval.LinkClosed:    approvalv1.ApprovalState_APPROVAL_STATE_CLOSED,
	approval.LinkCancelled: approvalv1.ApprovalState_APPROVAL_STATE_CANCELLED,
	approval.LinkReplaced:  approvalv1.ApprovalState_APPROVAL_STATE_REPLACED,
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func toProtoPost(p approval.Post) *approvalv1.Post {
	out := &approvalv1.Post{
		Id: p.ID, DepartmentId: p.DepartmentID, Text: p.Text, RequestedBy: p.RequestedBy,
		Status: toProtoStatus[p.Status], CreatedAt: ts(p.CreatedAt), UpdatedAt: ts(p.UpdatedAt), FailureReason: p.FailureReason,
		ExpiresAt: ts(p.ExpiresAt), FinalText: p.FinalText, WaitingFor: p.WaitingFor, Mode: modeString(p),
	}
	for _, d := range p.Decisions {
		out.Decisions = append(out.Decisions, &approvalv1.Decision{
			Outcome: toProtoOutcome[d.Outcome], Approver: d.ApproverEmail, DecidedAt: ts(d.DecidedAt), Comment: d.Comment, EditedText: d.EditedText,
		})
	}
	if p.Decision != "" {
		out.Decision = &approvalv1.Decision{Approver: p.DecidedBy, DecidedAt: ts(p.DecidedAt), Comment: p.Comment, Outcome: toProtoOutcome[p.Decision]}
	}
	if p.RemoteID != "" {
		out.Publication = &approvalv1.Publication{Channel: p.Channel, RemoteId: p.RemoteID, Url: p.RemoteURL, PublishedAt: ts(p.PublishedAt)}
	}
	for _, m := range p.Media {
		out.Media = append(out.Media, &approvalv1.PostMedia{ObjectName: m.Name, Sha256: m.SHA256[:], ContentType: m.ContentType, Size: m.Size})
	}
	return out
}

// modeString is the mode a post was asked under, as policies write it.
func modeString(p approval.Post) string {
	if p.Mode == "" {
		return string(approval.ModeFirst)
	}
	return approval.Policy{Mode: p.Mode, Quorum: p.Required}.ModeString()
}
