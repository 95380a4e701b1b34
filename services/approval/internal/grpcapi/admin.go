package grpcapi

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
)

type adminServer struct {
	approvalv1.UnimplementedAdminServiceServer
	svc *approval.Service
}

func (s *adminServer) CreateDepartment(ctx context.Context, req *approvalv1.CreateDepartmentRequest) (*approvalv1.CreateDepartmentResponse, error) {
	d, err := s.svc.CreateDepartment(ctx, req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.CreateDepartmentResponse{Department: toProtoDepartment(d)}, nil
}

func (s *adminServer) ListDepartments(ctx context.Context, _ *approvalv1.ListDepartmentsRequest) (*approvalv1.ListDepartmentsResponse, error) {
	ds, err := s.svc.ListDepartments(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &approvalv1.ListDepartmentsResponse{}
	for _, d := range ds {
		resp.Departments = append(resp.Departments, toProtoDepartment(d))
	}
	return resp, nil
}

func (s *adminServer) CreateAPIKey(ctx context.Context, req *approvalv1.CreateAPIKeyRequest) (*approvalv1.CreateAPIKeyResponse, error) {
	k, secret, err := s.svc.CreateAPIKey(ctx, req.GetDepartmentId(), req.GetLabel())
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.CreateAPIKeyResponse{ApiKey: toProtoAPIKey(k), Secret: secret}, nil
}

func (s *adminServer) ListAPIKeys(ctx context.Context, req *approvalv1.ListAPIKeysRequest) (*approvalv1.ListAPIKeysResponse, error) {
	ks, err := s.svc.ListAPIKeys(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &approvalv1.ListAPIKeysResponse{}
	for _, k := range ks {
		resp.ApiKeys = append(resp.ApiKeys, toProtoAPIKey(k))
	}
	return resp, nil
}

func (s *adminServer) RevokeAPIKey(ctx context.Context, req *approvalv1.RevokeAPIKeyRequest) (*approvalv1.RevokeAPIKeyResponse, error) {
	k, err := s.svc.RevokeAPIKey(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.RevokeAPIKeyResponse{ApiKey: toProtoAPIKey(k)}, nil
}

func (s *adminServer) CreateApprover(ctx context.Context, req *approvalv1.CreateApproverRequest) (*approvalv1.CreateApproverResponse, error) {
	a, err := s.svc.AddApprover(ctx, req.GetEmail(), req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.CreateApproverResponse{Approver: toProtoApprover(a)}, nil
}

func (s *adminServer) ListApprovers(ctx context.Context, _ *approvalv1.ListApproversRequest) (*approvalv1.ListApproversResponse, error) {
	as, err := s.svc.ListApprovers(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &approvalv1.ListApproversResponse{}
	for _, a := range as {
		resp.Approvers = append(resp.Approvers, toProtoApprover(a))
	}
	return resp, nil
}

func (s *adminServer) RemoveApprover(ctx context.Context, req *approvalv1.RemoveApproverRequest) (*approvalv1.RemoveApproverResponse, error) {
	if err := s.svc.RemoveApprover(ctx, req.GetId()); err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.RemoveApproverResponse{}, nil
}

func toProtoDepartment(d approval.Department) *approvalv1.Department {
	return &approvalv1.Department{Id: d.ID, Name: d.Name, CreatedAt: ts(d.CreatedAt)}
}

func toProtoAPIKey(k approval.APIKey) *approvalv1.APIKey {
	return &approvalv1.APIKey{Id: k.ID, DepartmentId: k.DepartmentID, Label: k.Label, Prefix: k.Prefix, CreatedAt: ts(k.CreatedAt), RevokedAt: ts(k.RevokedAt)}
}

func toProtoApprover(a approval.Approver) *approvalv1.Approver {
	return &approvalv1.Approver{Id: a.ID, Email: a.Email, Name: a.Name, CreatedAt: ts(a.CreatedAt)}
}

func (s *adminServer) ListAuditEvents(ctx context.Context, req *approvalv1.ListAuditEventsRequest) (*approvalv1.ListAuditEventsResponse, error) {
	entries, err := s.svc.ListAudit(ctx, req.GetPostId())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &approvalv1.ListAuditEventsResponse{}
	for _, e := range entries {
		resp.Events = append(resp.Events, &approvalv1.AuditEvent{
			At: ts(e.At), Actor: e.Actor, Origin: e.Origin, Action: e.Action,
			FromStatus: toProtoStatus[e.FromStatus], ToStatus: toProtoStatus[e.ToStatus], Comment: e.Comment,
			ApiKeyId: e.APIKeyID,
		})
	}
	return resp, nil
}

func (s *adminServer) SetDepartmentLimits(ctx context.Context, req *approvalv1.SetDepartmentLimitsRequest) (*approvalv1.SetDepartmentLimitsResponse, error) {
	l := req.GetLimits()
	set, effective, err := s.svc.SetDepartmentLimits(ctx, req.GetDepartmentId(),
		approval.Limits{PostsPerMinute: int(l.GetPostsPerMinute()), MaxUndecided: int(l.GetMaxUndecided())})
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.SetDepartmentLimitsResponse{Limits: toProtoLimits(set), Effective: toProtoLimits(effective)}, nil
}

func (s *adminServer) GetDepartmentLimits(ctx context.Context, req *approvalv1.GetDepartmentLimitsRequest) (*approvalv1.GetDepartmentLimitsResponse, error) {
	set, effective, err := s.svc.DepartmentLimits(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.GetDepartmentLimitsResponse{Limits: toProtoLimits(set), Effective: toProtoLimits(effective)}, nil
}

func (s *adminServer) CancelPost(ctx context.Context, req *approvalv1.AdminServiceCancelPostRequest) (*approvalv1.AdminServiceCancelPostResponse, error) {
	p, err := s.svc.CancelPost(ctx, req.GetPostId(), "", "ops", "ops")
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.AdminServiceCancelPostResponse{Post: toProtoPost(p)}, nil
}

func (s *adminServer) ResendApprovals(ctx context.Context, req *approvalv1.ResendApprovalsRequest) (*approvalv1.ResendApprovalsResponse, error) {
	n, err := s.svc.ResendApprovals(ctx, req.GetPostId(), "ops")
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.ResendApprovalsResponse{Approvers: int32(min(n, 1<<30))}, nil
}

func (s *adminServer) SetPolicy(ctx context.Context, req *approvalv1.SetPolicyRequest) (*approvalv1.SetPolicyResponse, error) {
	in := req.GetPolicy()
	if err := in.GetExpiry().CheckValid(); in.GetExpiry() != nil && err != nil {
		return nil, toStatus(fmt.Errorf("%w: expiry: %v", approval.ErrInvalid, err))
	}
	p, asks, err := s.svc.SetPolicy(ctx, approval.PolicyInput{
		DepartmentID: in.GetDepartmentId(), ApproverEmails: in.GetApproverEmails(), Mode: in.GetMode(),
		TTL: in.GetExpiry().AsDuration(), AllowSelfApproval: in.GetAllowSelfApproval(), TeamsWebhookURL: in.GetTeamsWebhookUrl(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.SetPolicyResponse{Policy: s.toProtoPolicy(ctx, p), UpdatedAt: ts(p.UpdatedAt), Asks: emails(asks)}, nil
}

func (s *adminServer) GetPolicy(ctx context.Context, req *approvalv1.GetPolicyRequest) (*approvalv1.GetPolicyResponse, error) {
	p, asks, err := s.svc.GetPolicy(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.GetPolicyResponse{Policy: s.toProtoPolicy(ctx, p), UpdatedAt: ts(p.UpdatedAt), Asks: emails(asks)}, nil
}

// toProtoPolicy names a policy's listed approvers by email, as ops set them.
func (s *adminServer) toProtoPolicy(ctx context.Context, p approval.Policy) *approvalv1.Policy {
	out := &approvalv1.Policy{
		DepartmentId: p.DepartmentID, Mode: p.ModeString(), Expiry: durationpb.New(p.TTL),
		AllowSelfApproval: p.AllowSelfApproval, TeamsWebhookUrl: p.TeamsWebhookURL,
	}
	if !p.AllApprovers {
		_, asks, err := s.svc.GetPolicy(ctx, p.DepartmentID)
		if err == nil {
			out.ApproverEmails = emails(asks)
		}
	}
	return out
}

func emails(as []approval.Approver) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Email
	}
	return out
}
