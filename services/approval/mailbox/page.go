package mailbox

import (
	"encoding/json"
	"html/template"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Handler serves the mailbox page (/), one message (/messages/{id}) and the messages as JSON
// (/api/messages), newest first on the page, oldest first in the JSON.
func (m *Mailbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		msgs := m.Messages()
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
		}
		render(w, listPage, msgs)
	})
	mux.HandleFunc("GET /messages/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		msg, ok := m.message(id)
		if err != nil || !ok {
			http.Error(w, "no such message", http.StatusNotFound)
			return
		}
		render(w, messagePage, struct {
			Message
			Body template.HTML
		}{msg, linkify(msg.Text)})
	})
	mux.HandleFunc("GET /api/messages", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m.Messages())
	})
	return mux
}

func render(w http.ResponseWriter, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if err := t.Execute(w, data); err != nil {
		http.Error(w, "render failed", http.StatusInternalServerError)
	}
}

var urlPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// linkify escapes text and turns its URLs into links, so an approval link can be clicked.
func linkify(text string) template.HTML {
	var b strings.Builder
	last := 0
	for _, loc := range urlPattern.FindAllStringIndex(text, -1) {
		b.WriteString(template.HTMLEscapeString(text[last:loc[0]]))
		u := template.HTMLEscapeString(text[loc[0]:loc[1]])
		b.WriteString(`<a href="` + u + `">` + u + `</a>`)
		last = loc[1]
	}
	b.WriteString(template.HTMLEscapeString(text[last:]))
	return template.HTML(b.String()) //nolint:gosec // every piece was escaped above
}

const style = `<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.4em;border-bottom:1px solid #ddd}
pre{white-space:pre-wrap;background:#f6f6f6;padding:1em;border-radius:6px}</style>`

var listPage = template.Must(template.New("list").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>Herald mailbox</title>` + style + `</head><body>
<h1>Herald mailbox</h1>
<p>Every email Herald sent on this machine. Approval emails hold the approver's link.</p>
{{if .}}<table><tr><th>Received</th><th>To</th><th>Subject</th></tr>
{{range .}}<tr><td>{{.Received.Format "2006-01-02 15:04:05"}}</td><td>{{range .To}}{{.}} {{end}}</td><td><a href="/messages/{{.ID}}">{{.Subject}}</a></td></tr>
{{end}}</table>{{else}}<p><em>No mail yet.</em></p>{{end}}
</body></html>`))

var messagePage = template.Must(template.New("message").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>{{.Subject}}</title>` + style + `</head><body>
<p><a href="/">&larr; mailbox</a></p>
<h1>{{.Subject}}</h1>
<p>From {{.From}} to {{range .To}}{{.}} {{end}}, {{.Received.Format "2006-01-02 15:04:05"}}</p>
<pre>{{.Body}}</pre>
</body></html>`))
