package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/heraldhq/herald/gateway/internal/idempotency"
	"github.com/heraldhq/herald/gateway/internal/intake"
	"github.com/heraldhq/herald/gateway/internal/keyauth"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/postresult"
)

// postRequest is the connector's request body; the field names come from the original Power Automate
// exercise and stay.
type postRequest struct {
	Tweet       *string     `json:"tweet"`
	RequestedBy *string     `json:"requestedby"`
	Media       []mediaItem `json:"media"`
}

// mediaItem is one picture, in the shape Power Automate gives binary parameters: the bytes in base64 and
// their type.
type mediaItem struct {
	ContentType *string `json:"$content-type"`
	Content     *string `json:"$content"`
}

// postView is how a post looks to the department that asked for it: the result object webhook
// deliveries carry too (postresult holds its one definition).
type postView = postresult.Result

// authenticate finds the department from the X-API-Key header or, for platforms that can only add query
// parameters, api_key.
func (s *server) authenticate(r *http.Request) (keyauth.Department, error) {
	key := r.Header.Get("X-API-Key")
	if key == "" {
		key = r.URL.Query().Get("api_key")
	}
	if key == "" {
		return keyauth.Department{}, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "missing API key: send it in the X-API-Key header"}
	}
	return s.deps.Keys.Authenticate(r.Context(), key, clientAddr(r, s.cfg.TrustedProxies))
}

func (s *server) createPost(w http.ResponseWriter, r *http.Request) {
	dept, err := s.authenticate(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := s.decodePost(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req.APIKeyID = dept.KeyID
	if req.IdempotencyKey != "" {
		s.createIdempotent(w, r, dept, req)
		return
	}
	if err := s.checkLimits(r, dept); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := s.deps.Intake.Submit(r.Context(), dept.ID, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.undecided.accepted(dept.ID)
	s.logAt(r.Context(), r, slog.LevelInfo, "post requested", "post_id", id, "department_id", dept.ID)
	s.accepted(w, http.StatusAccepted, firstAnswer(id, req))
}

// firstAnswer is the body of the 202 that accepts a request; a replay of it answers the same.
func firstAnswer(id string, req intake.Request) postView {
	return postView{ID: id, Status: statusNames[approvalv1.PostStatus_POST_STATUS_PENDING], Tweet: req.Tweet, RequestedBy: req.RequestedBy}
}

// createIdempotent handles a request with an Idempotency-Key, with Stripe's semantics across replicas: the
// key is claimed in the shared bucket before anything is published, so of two racing requests exactly one
// publishes; the other gets 409 (same body, still in flight), 422 (another body) or, once the first was
// accepted, the first's answer again.
func (s *server) createIdempotent(w http.ResponseWriter, r *http.Request, dept keyauth.Department, req intake.Request) {
	ctx := r.Context()
	id := intake.PostID(dept.ID, req.IdempotencyKey)
	// The pictures are part of the body: the same key with other pictures is another request (422).
	fields := []string{req.Tweet, req.RequestedBy}
	for _, a := range req.Media {
		sum := sha256.Sum256(a.Data)
		fields = append(fields, a.ContentType, hex.EncodeToString(sum[:]))
	}
	claim, replay, err := s.deps.Idempotency.Claim(ctx, id, dept.ID, idempotency.BodyHash(fields...))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if replay {
		w.Header().Set("Idempotent-Replayed", "true")
		s.accepted(w, http.StatusAccepted, firstAnswer(id, req))
		return
	}
	// From here the claim must end: accepted, failed (nothing queued) or released (refused before trying).
	end := func(finish func(context.Context, *idempotency.Claim) error) {
		// Not the request's context: the answer is decided, and the claim must be settled even if the
		// client hung up.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := finish(ctx, claim); err != nil {
			// Left in flight, the claim is taken over once stale; retries meanwhile get 409.
			s.logAt(ctx, r, slog.LevelWarn, "idempotency claim not settled", "post_id", id, "err", err)
		}
	}
	// Past the bucket's time to live the key is forgotten there, but still names the same post, which the
	// approval service may hold.
	switch known, err := s.recorded(r, dept, id, req); {
	case err != nil:
		end(s.deps.Idempotency.Release)
		s.fail(w, r, err)
		return
	case known:
		end(s.deps.Idempotency.Accept)
		w.Header().Set("Idempotent-Replayed", "true")
		s.accepted(w, http.StatusAccepted, firstAnswer(id, req))
		return
	}
	if err := s.checkLimits(r, dept); err != nil {
		end(s.deps.Idempotency.Release)
		s.fail(w, r, err)
		return
	}
	if _, err := s.deps.Intake.Submit(ctx, dept.ID, req); err != nil {
		end(s.deps.Idempotency.Fail)
		s.fail(w, r, err)
		return
	}
	end(s.deps.Idempotency.Accept)
	s.undecided.accepted(dept.ID)
	s.logAt(ctx, r, slog.LevelInfo, "post requested", "post_id", id, "department_id", dept.ID)
	s.accepted(w, http.StatusAccepted, firstAnswer(id, req))
}

// recorded reports whether the approval service already holds the post id with this request's text and
// requester; the same id with another text is a 422.
func (s *server) recorded(r *http.Request, dept keyauth.Department, id string, req intake.Request) (bool, error) {
	resp, err := s.deps.Approvals.GetPost(r.Context(), &approvalv1.GetPostRequest{PostId: id, DepartmentId: dept.ID})
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if p := resp.GetPost(); p.GetText() != req.Tweet || p.GetRequestedBy() != strings.TrimSpace(req.RequestedBy) || !sameMedia(p.GetMedia(), req.Media) {
		return false, idempotency.ErrMismatch
	}
	return true, nil
}

// sameMedia reports whether a recorded post's pictures are the request's, by type and hash, in order.
func sameMedia(recorded []*approvalv1.PostMedia, sent []intake.Attachment) bool {
	if len(recorded) != len(sent) {
		return false
	}
	for i, m := range recorded {
		sum := sha256.Sum256(sent[i].Data)
		if m.GetContentType() != sent[i].ContentType || !bytes.Equal(m.GetSha256(), sum[:]) {
			return false
		}
	}
	return true
}

// checkLimits refuses, with 429 and a Retry-After, a request past the API key's rate or the department's
// cap on undecided posts. The count is asked synchronously so that the 429 comes from this POST; requests
// accepted but still on their way through JetStream are not in it yet, which the rate limit bounds.
func (s *server) checkLimits(r *http.Request, dept keyauth.Department) error {
	key := dept.KeyID
	if key == "" {
		key = "department:" + dept.ID
	}
	if wait, ok := s.limits.reserve(key, dept.Limits.PostsPerMinute, s.now()); !ok {
		return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited", retryAfter: wait,
			Message: fmt.Sprintf("this API key may request %d posts a minute; wait before requesting more", dept.Limits.PostsPerMinute)}
	}
	if dept.Limits.MaxUndecided <= 0 {
		return nil
	}
	count, fresh := s.undecided.get(dept.ID, s.now())
	if !fresh {
		resp, err := s.deps.Approvals.CountUndecided(r.Context(), &approvalv1.CountUndecidedRequest{DepartmentId: dept.ID})
		if err != nil {
			return fmt.Errorf("count undecided posts: %w", err)
		}
		count = int(resp.GetCount())
		s.undecided.set(dept.ID, count, s.now())
	}
	if count >= dept.Limits.MaxUndecided {
		// Room frees up when an approver decides: the same wait as polling a pending post.
		return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_undecided", retryAfter: s.cfg.RetryAfterPending,
			Message: fmt.Sprintf("%d of this department's posts are waiting for a decision, the most it may have; retry once the communications team decided some", count)}
	}
	return nil
}

// decodePost reads and checks the body: JSON only, bounded, no unknown fields, one value.
func (s *server) decodePost(w http.ResponseWriter, r *http.Request) (intake.Request, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return intake.Request{}, &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "send the post as JSON with Content-Type: application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return intake.Request{}, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("the body is larger than %d bytes", s.cfg.MaxBodyBytes)}
	}
	if err != nil {
		return intake.Request{}, badRequest("invalid_body", "could not read the body", "")
	}
	pr, err := decodePostBody(body)
	if err != nil {
		return intake.Request{}, err
	}
	req := intake.Request{IdempotencyKey: r.Header.Get("Idempotency-Key")}
	if pr.Tweet != nil {
		req.Tweet = *pr.Tweet
	}
	if pr.RequestedBy != nil {
		req.RequestedBy = *pr.RequestedBy
	}
	if err := intake.Validate(req); err != nil {
		return intake.Request{}, err
	}
	if req.Media, err = decodeMedia(pr.Media); err != nil {
		return intake.Request{}, err
	}
	return req, nil
}

// decodePostBody decodes the body strictly: field names match exactly, a repeated name, an unknown name,
// invalid UTF-8 (raw or as an escaped lone surrogate) and anything after the object are errors. A lenient
// decoder would let `{"TWEET": ...}` or a second "tweet" silently decide what gets posted.
func decodePostBody(body []byte) (postRequest, error) {
	var pr postRequest
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if err := json.UnmarshalDecode(dec, &pr, json.RejectUnknownMembers(true)); err != nil {
		return postRequest{}, jsonError(err)
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return postRequest{}, badRequest("invalid_json", "the body must hold exactly one JSON object", "")
	}
	return pr, nil
}

// decodeMedia decodes and checks the pictures: each has a type X takes, base64 that decodes, bytes that
// are the declared type, within X's size for it; together at most media.MaxItems, a GIF alone. Nothing
// is repaired: a picture whose bytes are not what it says is refused, never relabelled.
func decodeMedia(items []mediaItem) ([]intake.Attachment, error) {
	types := make([]string, len(items))
	for i, it := range items {
		if it.ContentType == nil || it.Content == nil {
			return nil, badRequest("invalid_media", fmt.Sprintf("media[%d] needs both $content-type and $content", i), fmt.Sprintf("media[%d]", i))
		}
		types[i] = *it.ContentType
	}
	if err := media.CheckSet(types); err != nil {
		return nil, err
	}
	out := make([]intake.Attachment, len(items))
	for i, it := range items {
		target := fmt.Sprintf("media[%d]", i)
		if !media.Supported(*it.ContentType) {
			return nil, media.Check(i, *it.ContentType, nil)
		}
		// Bounded before decoding: the body limit bounds the sum, this bounds each.
		if max := media.MaxBytes(*it.ContentType); base64.StdEncoding.DecodedLen(len(*it.Content)) > max+2 {
			return nil, &media.CheckError{Index: i, Problem: media.TooLarge,
				Message: fmt.Sprintf("is larger than the %d bytes (%d MB) X takes for %s", max, max/(1024*1024), *it.ContentType)}
		}
		data, err := base64.StdEncoding.Strict().DecodeString(*it.Content)
		if err != nil {
			return nil, badRequest("invalid_media", fmt.Sprintf("media[%d]: $content is not valid base64 (standard alphabet, padded): %v", i, err), target)
		}
		if err := media.Check(i, *it.ContentType, data); err != nil {
			return nil, err
		}
		out[i] = intake.Attachment{ContentType: *it.ContentType, Data: data}
	}
	return out, nil
}

// postFields says what each field of the body must be, for error messages that name JSON kinds rather
// than Go types.
var postFields = map[string]string{"tweet": "a string", "requestedby": "a string", "media": "an array",
	"$content-type": "a string", "$content": "a string (base64)"}

// jsonError turns a decoding error into a 400 that says what is wrong and where, in JSON's terms.
func jsonError(err error) error {
	var syn *jsontext.SyntacticError
	var sem *json.SemanticError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("invalid_json", "the body is empty or cut short", "")
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		field := syn.JSONPointer.LastToken()
		return badRequest("duplicate_field", fmt.Sprintf("the field %q appears more than once", field), field)
	case errors.As(err, &syn):
		return badRequest("invalid_json", fmt.Sprintf("malformed JSON at byte %d: %s", syn.ByteOffset, strings.TrimPrefix(syn.Err.Error(), "jsontext: ")), "")
	case errors.As(err, &sem) && errors.Is(sem.Err, json.ErrUnknownName):
		field := sem.JSONPointer.LastToken()
		if strings.HasPrefix(string(sem.JSONPointer), "/media/") {
			return badRequest("unknown_field", fmt.Sprintf("unknown field %q in a media item; its fields are $content-type and $content", field), field)
		}
		return badRequest("unknown_field", fmt.Sprintf("unknown field %q; the fields are tweet, requestedby and media (names are case-sensitive)", field), field)
	case errors.As(err, &sem) && sem.JSONPointer == "":
		return badRequest("invalid_json", "the body must be a JSON object", "")
	case errors.As(err, &sem):
		field := sem.JSONPointer.LastToken()
		if want, ok := postFields[field]; ok {
			return badRequest("invalid_json", fmt.Sprintf("%s must be %s, not %s", field, want, kindName(sem.JSONKind)), field)
		}
		return badRequest("invalid_json", fmt.Sprintf("unexpected value at %s", sem.JSONPointer), "")
	default:
		return badRequest("invalid_json", "the body is not valid JSON", "")
	}
}

// kindName names a JSON kind as a person would.
func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	default:
		return "something else"
	}
}

func (s *server) getPost(w http.ResponseWriter, r *http.Request) {
	dept, err := s.authenticate(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	uid, err := uuid.Parse(id)
	if err != nil {
		s.fail(w, r, errNotFound)
		return
	}
	resp, err := s.deps.Approvals.GetPost(r.Context(), &approvalv1.GetPostRequest{PostId: id, DepartmentId: dept.ID})
	if status.Code(err) == codes.NotFound && s.justIssued(r, uid, dept) {
		// Accepted moments ago, the post may still be on its way through JetStream to the approval service:
		// then it is pending, not missing. Another department's post is PERMISSION_DENIED, not NOT_FOUND,
		// and stays a 404; the gateway's token cannot read it.
		s.accepted(w, http.StatusAccepted, postView{ID: id, Status: statusNames[approvalv1.PostStatus_POST_STATUS_PENDING]})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerPost(w, resp.GetPost())
}

// justIssued reports whether the gateway accepted the post id moments ago, so that a NotFound means it
// is still on its way to the approval service: a time-ordered id issued in the last minute, or an id
// derived from an Idempotency-Key whose claim the bucket holds as accepted for this department.
func (s *server) justIssued(r *http.Request, id uuid.UUID, dept keyauth.Department) bool {
	if recentlyIssued(id, s.now()) {
		return true
	}
	if id.Version() != 5 {
		return false
	}
	ok, err := s.deps.Idempotency.Accepted(r.Context(), id.String(), dept.ID)
	if err != nil {
		// Unknown then: the 404 a poll gets is wrong only in the moment before the post is recorded.
		s.logAt(r.Context(), r, slog.LevelWarn, "idempotency bucket unavailable for a status check", "err", err)
	}
	return ok
}

// cancelPost cancels the department's own undecided post: 200 with the cancelled post, 404 for an
// unknown id or another department's post, 409 once the post is decided (or expired, or cancelled).
func (s *server) cancelPost(w http.ResponseWriter, r *http.Request) {
	dept, err := s.authenticate(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	uid, err := uuid.Parse(id)
	if err != nil {
		s.fail(w, r, errNotFound)
		return
	}
	resp, err := s.deps.Approvals.CancelPost(r.Context(), &approvalv1.CancelPostRequest{PostId: id, DepartmentId: dept.ID, Actor: "api-key:" + dept.KeyID})
	if status.Code(err) == codes.NotFound && recentlyIssued(uid, s.now()) {
		// Accepted moments ago and still on its way through JetStream: there is nothing to cancel yet, but
		// there will be, so this is a conflict to retry rather than a 404.
		s.fail(w, r, &apiError{Status: http.StatusConflict, Code: "conflict", Message: "the post is still being recorded; retry the cancellation in a few seconds"})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.undecided.forget(dept.ID)
	s.logAt(r.Context(), r, slog.LevelInfo, "post cancelled", "post_id", id, "department_id", dept.ID)
	writeJSON(w, http.StatusOK, toView(resp.GetPost()))
}

// recentlyIssued reports whether id is a time-ordered id the gateway could have issued in the last
// minute.
func recentlyIssued(id uuid.UUID, now time.Time) bool {
	if id.Version() != 7 {
		return false
	}
	sec, nsec := id.Time().UnixTime()
	age := now.Sub(time.Unix(sec, nsec))
	return age >= -time.Minute && age < time.Minute
}

// answerPost answers with a post's state: 202 and the polling headers while it is undecided or on its
// way out (the asynchronous pattern says poll again), 200 once it is final.
func (s *server) answerPost(w http.ResponseWriter, p *approvalv1.Post) {
	switch p.GetStatus() {
	case approvalv1.PostStatus_POST_STATUS_PENDING, approvalv1.PostStatus_POST_STATUS_APPROVED:
		s.accepted(w, http.StatusAccepted, toView(p))
	default:
		writeJSON(w, http.StatusOK, toView(p))
	}
}

// accepted answers 202 with the polling headers of the asynchronous request-reply pattern. Location is
// absolute when the public URL is known: Logic Apps requires "the absolute path to a URL" there
// (learn.microsoft.com, "Create custom APIs you can call from Azure Logic Apps", asynchronous pattern).
//
// Retry-After says how long the wait is likely to be: a person deciding takes minutes or hours
// (RetryAfterPending), while an approved post is published within seconds (RetryAfter).
func (s *server) accepted(w http.ResponseWriter, status int, v postView) {
	wait := s.cfg.RetryAfter
	if v.Status == statusNames[approvalv1.PostStatus_POST_STATUS_PENDING] {
		wait = s.cfg.RetryAfterPending
	}
	w.Header().Set("Location", s.cfg.PublicURL+"/v1/posts/"+v.ID)
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	writeJSON(w, status, v)
}

// statusNames and outcomeNames are postresult's, the one place where the approval service's enums become
// the connector API's strings.
var (
	statusNames  = postresult.StatusNames
	outcomeNames = postresult.OutcomeNames
)

func toView(p *approvalv1.Post) postView { return postresult.FromProto(p) }
