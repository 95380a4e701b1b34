package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

// TeamsWebhook posts Adaptive Cards to Microsoft Teams through Workflows incoming webhooks (the "When a
// Teams webhook request is received" trigger), which take the message-with-attachments shape the retired
// Office 365 connectors took.
type TeamsWebhook struct {
	client *http.Client
}

var _ approval.Teams = (*TeamsWebhook)(nil)

// NewTeamsWebhook returns a TeamsWebhook; a nil client means one with a ten-second timeout.
func NewTeamsWebhook(client *http.Client) *TeamsWebhook {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &TeamsWebhook{client: client}
}

// PostCard implements approval.Teams. Any answer but 2xx is an error, which the outbox retries.
func (t *TeamsWebhook) PostCard(ctx context.Context, webhookURL string, c approval.TeamsCard) error {
	body, err := json.Marshal(Message(c))
	if err != nil {
		return fmt.Errorf("encode teams card: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhookURL, bytes.NewReader(body))
	if err != nil {
		// The URL is a secret of sorts (whoever has it can post to the channel): never in errors or logs.
		return errors.New("teams webhook URL is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("post teams card: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("teams webhook answered %s", resp.Status)
	}
	return nil
}

// redactURLError keeps the webhook URL (which carries its signature) out of a client error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// obj is a JSON object.
type obj = map[string]any

// Message is the webhook payload for c: a message with one Adaptive Card (schema 1.4, which Teams
// renders on desktop and mobile).
func Message(c approval.TeamsCard) obj {
	title := fmt.Sprintf("Approval needed: post from %s", c.Department)
	facts := []obj{{"title": "Requested by", "value": c.RequestedBy}, {"title": "Department", "value": c.Department}}
	body := []obj{}
	actions := []obj{}
	if c.Status == approval.StatusPending {
		if !c.ExpiresAt.IsZero() {
			facts = append(facts, obj{"title": "Expires", "value": c.ExpiresAt.UTC().Format("2 Jan 2006 15:04 MST")})
		}
		actions = append(actions, obj{"type": "Action.OpenUrl", "title": "Review in Herald", "url": c.ReviewURL})
	} else {
		title = fmt.Sprintf("Post from %s: %s", c.Department, c.Status)
		if c.DecidedBy != "" {
			facts = append(facts, obj{"title": "Decided by", "value": c.DecidedBy})
		}
		if c.Comment != "" {
			facts = append(facts, obj{"title": "Comment", "value": c.Comment})
		}
	}
	body = append(body,
		obj{"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": title, "wrap": true},
		obj{"type": "TextBlock", "text": c.Text, "wrap": true},
	)
	if c.FinalText != "" {
		body = append(body, obj{"type": "TextBlock", "text": "Published as edited: " + c.FinalText, "wrap": true, "isSubtle": true})
	}
	body = append(body, obj{"type": "FactSet", "facts": facts})
	if c.Status == approval.StatusPending {
		body = append(body, obj{"type": "TextBlock", "wrap": true, "isSubtle": true,
			"text": "Each approver decides through the personal link in their Herald email."})
	}
	card := obj{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard", "version": "1.4", "body": body,
	}
	if len(actions) > 0 {
		card["actions"] = actions
	}
	return obj{
		"type": "message",
		"attachments": []obj{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	}
}
