// Package connector is the one source of Herald's custom-connector definition: the OpenAPI 2.0
// (Swagger) document the gateway serves at /openapi.json and the files in deploy/connector/ that
// Microsoft's connector tooling (paconn, the Power Automate and Logic Apps import) reads. Power
// Automate and Logic Apps accept only OpenAPI 2.0, and their extensions (x-ms-summary, x-ms-visibility)
// decide what a department sees, so the document is written here with those in mind rather than
// generated from the handlers.
package connector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/tweetlen"
)

// PlaceholderURL is the public URL written into the files in deploy/connector/: whoever imports them
// replaces the host with their gateway's, or imports from their gateway's /openapi.json instead.
const PlaceholderURL = "https://herald.example.com"

type obj = map[string]any

// Definition returns the connector's OpenAPI 2.0 document for a gateway reached at publicURL
// (HERALD_PUBLIC_URL): host, basePath and scheme come from it, so the document is right behind a
// reverse proxy. An empty publicURL leaves them out, which OpenAPI reads as "where this document was
// served from".
func Definition(publicURL string) ([]byte, error) {
	doc := obj{
		"swagger": "2.0",
		"info": obj{
			"title":   "Herald",
			"version": "1.0",
			"description": "Post to the company's X (Twitter) account without holding its credentials: every post " +
				"waits for the communications team's approval, and the action finishes once it is published or rejected.",
			"contact": obj{"name": "Herald (communications team)"},
		},
		"consumes":            []string{"application/json"},
		"produces":            []string{"application/json"},
		"paths":               paths(),
		"definitions":         definitions(),
		"securityDefinitions": obj{"api_key": obj{"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The department's Herald API key, issued by the communications team."}},
		"security":            []obj{{"api_key": []string{}}},
	}
	if publicURL != "" {
		u, err := url.Parse(publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("connector: the public URL %q must be http(s)://host[:port][/path]", publicURL)
		}
		// Microsoft's schema wants host without a scheme, and basePath starting with a slash.
		doc["host"] = u.Host
		doc["basePath"] = "/" + strings.Trim(u.Path, "/")
		doc["schemes"] = []string{u.Scheme}
	}
	return marshal(doc)
}

// APIProperties returns deploy/connector/apiProperties.json: the connection's one parameter (the API
// key, as a secure string) and the connector's look, in the layout paconn reads.
func APIProperties() ([]byte, error) {
	return marshal(obj{
		"properties": obj{
			"iconBrandColor": "#1f4e79",
			"capabilities":   []string{"actions", "triggers"},
			"publisher":      "Herald",
			"stackOwner":     "Herald",
			"connectionParameters": obj{
				"api_key": obj{
					"type": "securestring",
					"uiDefinition": obj{
						"displayName": "API key",
						"description": "Your department's Herald API key (it starts with hk_), from the communications team",
						"tooltip":     "Herald sends it in the X-API-Key header",
						"constraints": obj{"tabIndex": 2, "clearText": false, "required": "true"},
					},
				},
			},
		},
	})
}

// marshal writes JSON as people and diffs like it: indented, keys sorted, no HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func paths() obj {
	errs := func(codes ...string) obj {
		r := obj{}
		for _, c := range codes {
			r[c] = obj{"description": errorDescriptions[c], "schema": ref("Error")}
			if c == "409" || c == "429" || c == "503" {
				// Power Automate and Zoho Flow retry these after Retry-After seconds.
				r[c].(obj)["headers"] = obj{"Retry-After": obj{
					"type": "integer", "x-ms-summary": "Retry after", "x-ms-visibility": "internal",
					"description": "Seconds to wait before sending the request again.",
				}}
			}
		}
		return r
	}
	post := errs("400", "401", "409", "413", "415", "422", "429", "503")
	post["202"] = obj{
		"description": "Accepted and waiting for approval (or being published). Power Automate and Logic Apps follow Location, after Retry-After seconds, until the answer is 200.",
		"schema":      ref("Post"),
		"headers":     pollingHeaders(),
	}
	post["200"] = obj{
		"description": "The post is final: published, rejected, failed or unknown. A flow branches on status and decision.",
		"schema":      ref("Post"),
	}
	get := errs("401", "404", "429", "503")
	get["202"] = post["202"]
	get["200"] = post["200"]
	cancel := errs("401", "404", "429", "503")
	cancel["200"] = obj{"description": "Cancelled: the post will not be published, and its approval links say so.", "schema": ref("Post")}
	cancel["409"] = obj{"description": "The post was already decided (or expired, or cancelled), or is still being recorded; the message says which.", "schema": ref("Error")}
	subscribe := errs("400", "401", "429", "503")
	subscribe["201"] = obj{
		"description": "Subscribed. Location is where the platform sends DELETE when the flow is turned off or deleted; secret is the Standard Webhooks signing secret, shown this once.",
		"schema":      ref("Subscription"),
		"headers": obj{"Location": obj{
			"type": "string", "x-ms-summary": "Subscription URL", "x-ms-visibility": "internal",
			"description": "The absolute URL of the subscription, to delete it.",
		}},
	}
	unsubscribe := errs("401", "404", "429", "503")
	unsubscribe["204"] = obj{"description": "Unsubscribed: nothing more is delivered, not even what was still queued."}
	return obj{
		"/v1/subscriptions": obj{
			// What each delivery carries: the Standard Webhooks envelope around the post's result object,
			// the same object Get the status of a post answers with.
			"x-ms-notification-content": obj{
				"description": "A post was published (or, if the trigger asks for them, rejected, failed or expired).",
				"schema":      ref("PostEvent"),
			},
			"post": obj{
				"operationId":     "WhenAPostIsPublished",
				"summary":         "When a post is published",
				"description":     "Starts the flow when one of the department's posts is published on X (or, if chosen, rejected, failed or expired), with the same result a post's status shows. Herald signs every delivery (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature) and retries for several hours until the flow accepts it.",
				"x-ms-trigger":    "single",
				"x-ms-visibility": "important",
				"parameters": []obj{{
					"name": "body", "in": "body", "required": true, "schema": ref("SubscriptionRequest"),
					"x-ms-summary": "Subscription", "description": "Where to deliver, and which events.",
				}},
				"responses": subscribe,
			},
		},
		"/v1/subscriptions/{id}": obj{"delete": obj{
			"operationId":     "DeleteSubscription",
			"summary":         "Stop a trigger",
			"description":     "Ends a subscription; the platform calls this itself when the flow is deleted.",
			"x-ms-visibility": "internal",
			"parameters": []obj{{
				"name": "id", "in": "path", "required": true, "type": "string", "format": "uuid",
				"x-ms-summary": "Subscription ID", "description": "The subscription's ID, from its Location.",
			}},
			"responses": unsubscribe,
		}},
		"/v1/posts": obj{"post": obj{
			"operationId": "PostToSocialMedia",
			"summary":     "Post to social media",
			"description": fmt.Sprintf("Asks the communications team to approve a tweet (at most %d characters as X counts them: a link counts 23, CJK characters and emoji 2) and waits. "+
				"The action ends when the tweet is published on X, or when an approver rejects it; the result says which, who decided and why.", tweetlen.MaxLength),
			"x-ms-visibility": "important",
			"parameters": []obj{
				{
					"name": "body", "in": "body", "required": true, "schema": ref("PostRequest"),
					"x-ms-summary": "Post", "description": "The tweet and who asks for it.",
				},
				{
					"name": "Idempotency-Key", "in": "header", "required": false, "type": "string", "maxLength": 255,
					"x-ms-summary": "Idempotency key", "x-ms-visibility": "advanced",
					"description": "Any unique string (a flow run id, say). Sending the same key with the same tweet again, however late, answers with the same post instead of making a second one; the same key with another tweet is refused (422), and while the first request is still being handled the second gets 409.",
				},
			},
			"responses": post,
		}},
		"/v1/posts/{id}": obj{"get": obj{
			"operationId": "GetPostStatus",
			"summary":     "Get the status of a post",
			"description": "Reads where a post requested earlier stands: waiting for approval, published (with its link on X), rejected (with the approver's comment) or failed. " +
				"Post to social media already waits for the outcome; use this to look a post up later by its ID.",
			"x-ms-visibility": "advanced",
			"parameters": []obj{{
				"name": "id", "in": "path", "required": true, "type": "string", "format": "uuid",
				"x-ms-summary": "Post ID", "description": "The ID that Post to social media returned.",
			}},
			"responses": get,
		},
			"delete": obj{
				"operationId": "CancelPost",
				"summary":     "Cancel a post",
				"description": "Withdraws a post that is still waiting for approval: it will not be published, and the approvers' links say it was cancelled. " +
					"A post already approved, rejected or expired cannot be cancelled.",
				"x-ms-visibility": "advanced",
				"parameters": []obj{{
					"name": "id", "in": "path", "required": true, "type": "string", "format": "uuid",
					"x-ms-summary": "Post ID", "description": "The ID that Post to social media returned.",
				}},
				"responses": cancel,
			}},
	}
}

var errorDescriptions = map[string]string{
	"400": "The request is wrong: malformed JSON, an unknown field, a missing tweet or requester, a tweet longer than X allows (the message gives the counted length), or a picture that is not valid base64, not the declared type, one too many (at most 4) or a GIF beside others (the target names the picture). Do not retry unchanged.",
	"401": "The API key is missing, unknown or revoked.",
	"404": "No such post (or subscription), or it belongs to another department.",
	"409": "A request with the same Idempotency-Key and the same tweet is still being handled; retry after Retry-After seconds (1) to get its answer.",
	"413": "The body is larger than the gateway accepts, or a picture is larger than X takes (5 MB, 15 MB for a GIF; the target names it).",
	"415": "The body is not JSON (send Content-Type: application/json), or a picture's type is one X does not take (the target names it).",
	"422": "This Idempotency-Key was already used for a different tweet (or requester). Do not retry unchanged.",
	"429": "Slow down: this API key requested more posts a minute than its department may (code rate_limited), this department has as many posts waiting for a decision as it may (code too_many_undecided), or this address sent too many invalid keys; nothing was queued. Retry after Retry-After seconds.",
	"503": "Herald cannot take the request right now and nothing was queued; retry after Retry-After seconds.",
}

func pollingHeaders() obj {
	return obj{
		"Location": obj{
			"type": "string", "x-ms-summary": "Status URL", "x-ms-visibility": "internal",
			"description": "The absolute URL of this post's status, which the platform polls.",
		},
		"Retry-After": obj{
			"type": "integer", "x-ms-summary": "Retry after", "x-ms-visibility": "internal",
			"description": "Seconds to wait before polling the status URL again: longer while a person decides, short while the post is being published.",
		},
	}
}

func ref(name string) obj { return obj{"$ref": "#/definitions/" + name} }

func str(summary, description string, extra ...any) obj {
	o := obj{"type": "string", "x-ms-summary": summary, "description": description}
	for i := 0; i+1 < len(extra); i += 2 {
		o[extra[i].(string)] = extra[i+1]
	}
	return o
}

func definitions() obj {
	return obj{
		"PostRequest": obj{
			"type":     "object",
			"required": []string{"tweet", "requestedby"},
			"properties": obj{
				"tweet": str("Tweet", fmt.Sprintf("The text to post, exactly as it should appear. At most %d as X counts: a link counts 23, CJK characters and most emoji 2.", tweetlen.MaxLength),
					"minLength", 1, "x-ms-visibility", "important"),
				"requestedby": str("Requested by", "Who in the department asks for this post (a name or email address); the approver sees it.",
					"minLength", 1, "maxLength", 200, "x-ms-visibility", "important"),
				"media": obj{
					"type": "array", "maxItems": media.MaxItems, "x-ms-summary": "Pictures", "x-ms-visibility": "advanced",
					"description": "Up to 4 pictures posted with the tweet (JPEG, PNG or WEBP of at most 5 MB each), or one GIF of at most 15 MB alone. The approver sees them before deciding.",
					"items": obj{
						"type":     "object",
						"required": []string{"$content-type", "$content"},
						"properties": obj{
							"$content-type": str("Content type", "The picture's type: image/jpeg, image/png, image/gif or image/webp. It must match the bytes.",
								"enum", []string{media.JPEG, media.PNG, media.GIF, media.WEBP}),
							"$content": obj{"type": "string", "format": "byte", "x-ms-summary": "Picture", "description": "The picture's bytes, base64-encoded (a file content from an earlier step)."},
						},
					},
				},
			},
		},
		"Post": obj{
			"type": "object",
			"properties": obj{
				"id": str("Post ID", "Herald's ID of the post."),
				"status": str("Status", "Where the post stands: pending (waiting for an approver), approved (being published), published, rejected, failed (X refused it; see failure reason), unknown (X may or may not have posted it; the communications team checks), expired (nobody decided in time) or cancelled.",
					"enum", []string{"pending", "approved", "published", "rejected", "failed", "unknown", "expired", "cancelled"}),
				"tweet":          str("Tweet", "The text as approved and posted (or as requested, while pending)."),
				"requestedby":    str("Requested by", "Who in the department asked for the post.", "x-ms-visibility", "advanced"),
				"created_at":     str("Requested at", "When Herald accepted the request.", "format", "date-time", "x-ms-visibility", "advanced"),
				"failure_reason": str("Failure reason", "Why the post is failed or unknown; empty otherwise."),
				"final_tweet":    str("Final tweet", "The text published when an approver edited it while approving; absent when the tweet went out as requested."),
				"status_detail":  str("Status detail", "What a pending post waits for when nobody could be asked yet (waiting for an approver to be added)."),
				"decisions": obj{
					"type": "array", "x-ms-summary": "Decisions", "x-ms-visibility": "advanced",
					"description": "Every approver's answer so far, when the department's policy asks for several (all, quorum).",
					"items": obj{
						"type": "object",
						"properties": obj{
							"outcome":    str("Outcome", "approved or rejected.", "enum", []string{"approved", "rejected"}),
							"approver":   str("Approver", "The approver's email address."),
							"comment":    str("Comment", "What the approver wrote; may be empty."),
							"decided_at": str("Decided at", "When the approver answered.", "format", "date-time"),
						},
					},
				},
				"decision": obj{
					"type": "object", "x-ms-summary": "Decision", "description": "The approver's decision; absent while pending.",
					"properties": obj{
						"outcome":    str("Outcome", "approved or rejected.", "enum", []string{"approved", "rejected"}),
						"approver":   str("Approver", "The email address of the approver who decided."),
						"comment":    str("Approver comment", "What the approver wrote with the decision; may be empty."),
						"decided_at": str("Decided at", "When the approver decided.", "format", "date-time", "x-ms-visibility", "advanced"),
					},
				},
				"publication": obj{
					"type": "object", "x-ms-summary": "Publication", "description": "Where the post was published; absent until it is.",
					"properties": obj{
						"channel":      str("Channel", "Where it was posted (x).", "x-ms-visibility", "advanced"),
						"remote_id":    str("Tweet ID", "The post's ID on X."),
						"url":          str("Tweet URL", "The link to the post on X.", "format", "uri"),
						"published_at": str("Published at", "When X accepted the post.", "format", "date-time", "x-ms-visibility", "advanced"),
					},
				},
			},
		},
		"SubscriptionRequest": obj{
			"type":     "object",
			"required": []string{"url"},
			"properties": obj{
				"url": str("Notification URL", "Where Herald delivers the events: https, on a public address. The platform fills it in.",
					"format", "uri", "x-ms-notification-url", true, "x-ms-visibility", "internal"),
				"events": obj{
					"type": "array", "x-ms-summary": "Events", "x-ms-visibility": "advanced",
					"description": "Which events start the flow: published (the default), rejected, failed, expired.",
					"default":     []string{"published"},
					"items":       obj{"type": "string", "enum": []string{"published", "rejected", "failed", "expired"}},
				},
			},
		},
		"Subscription": obj{
			"type": "object",
			"properties": obj{
				"id":            str("Subscription ID", "Herald's ID of the subscription."),
				"url":           str("Notification URL", "Where events are delivered.", "x-ms-visibility", "internal"),
				"events":        obj{"type": "array", "x-ms-summary": "Events", "description": "The events delivered.", "items": obj{"type": "string"}},
				"created_at":    str("Created at", "When the subscription was made.", "format", "date-time", "x-ms-visibility", "advanced"),
				"failing_since": str("Failing since", "Set when deliveries used up their retries; the next delivery that succeeds clears it.", "format", "date-time", "x-ms-visibility", "advanced"),
				"secret":        str("Signing secret", "The whsec_ secret that signs deliveries (Standard Webhooks), returned only when the subscription is made.", "x-ms-visibility", "internal"),
			},
		},
		"PostEvent": obj{
			"type": "object",
			"properties": obj{
				"type": str("Event type", "post.published, post.rejected, post.failed or post.expired.",
					"enum", []string{"post.published", "post.rejected", "post.failed", "post.expired"}),
				"timestamp": str("Event time", "When Herald sent the event.", "format", "date-time", "x-ms-visibility", "advanced"),
				"data":      obj{"$ref": "#/definitions/Post", "x-ms-summary": "Post", "description": "The post, exactly as Get the status of a post shows it."},
			},
		},
		"Error": obj{
			"type": "object", "required": []string{"error"},
			"properties": obj{
				"error": obj{
					"type": "object", "x-ms-summary": "Error", "description": "What went wrong.", "required": []string{"code", "message"},
					"properties": obj{
						"code":    str("Error code", "A stable, machine-readable code, such as invalid_request or unauthorized."),
						"message": str("Error message", "What went wrong, for a person."),
						"target":  str("Error target", "The input to blame (a JSON field such as tweet, or the Idempotency-Key header), when there is one.", "x-ms-visibility", "advanced"),
					},
				},
			},
		},
	}
}
