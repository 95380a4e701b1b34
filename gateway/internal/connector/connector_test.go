package connector_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlclark/regexp2"
	"github.com/go-openapi/loads"
	"github.com/go-openapi/strfmt"
	"github.com/go-openapi/validate"
	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/heraldhq/herald/gateway/internal/connector"
)

// update rewrites deploy/connector/ from the Go source: go test ./internal/connector -update
var update = flag.Bool("update", false, "rewrite deploy/connector/ from the connector package")

// deployDir is deploy/connector/ seen from this package.
var deployDir = filepath.Join("..", "..", "..", "deploy", "connector")

// generated is every file of deploy/connector/ that this package writes.
func generated(t *testing.T) map[string][]byte {
	t.Helper()
	def, err := connector.Definition(connector.PlaceholderURL)
	if err != nil {
		t.Fatal(err)
	}
	props, err := connector.APIProperties()
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"apiDefinition.swagger.json": def, "apiProperties.json": props}
}

// TestFilesMatchSource fails when deploy/connector/ differs from what the gateway serves (with the
// placeholder host): one source of truth, regenerated with -update.
func TestFilesMatchSource(t *testing.T) {
	for name, want := range generated(t) {
		path := filepath.Join(deployDir, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/connector -update)", err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s is stale; run go test ./internal/connector -update (-source +file):\n%s", path, diff)
		}
	}
}

func TestDefinitionHostFromPublicURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		publicURL              string
		host, basePath, scheme string
		wantErr                bool
	}{
		{publicURL: "http://localhost:8080", host: "localhost:8080", basePath: "/", scheme: "http"},
		{publicURL: "https://herald.contoso.com/", host: "herald.contoso.com", basePath: "/", scheme: "https"},
		{publicURL: "https://proxy.contoso.com/herald", host: "proxy.contoso.com", basePath: "/herald", scheme: "https"},
		{publicURL: "ftp://x", wantErr: true},
		{publicURL: "herald.contoso.com", wantErr: true},
		{publicURL: "https://h.example/?q=1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.publicURL, func(t *testing.T) {
			b, err := connector.Definition(tt.publicURL)
			if tt.wantErr {
				if err == nil {
					t.Fatal("Definition accepted a URL it cannot use")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Host     string   `json:"host"`
				BasePath string   `json:"basePath"`
				Schemes  []string `json:"schemes"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Host != tt.host || doc.BasePath != tt.basePath || len(doc.Schemes) != 1 || doc.Schemes[0] != tt.scheme {
				t.Errorf("host %q basePath %q schemes %v, want %q %q [%s]", doc.Host, doc.BasePath, doc.Schemes, tt.host, tt.basePath, tt.scheme)
			}
		})
	}
}

// definitions are the documents the validation tests check: what the gateway serves behind a proxy
// path, without a public URL, and the committed file.
func definitions(t *testing.T) map[string][]byte {
	t.Helper()
	docs := map[string][]byte{"placeholder": generated(t)["apiDefinition.swagger.json"]}
	for name, u := range map[string]string{"behind a proxy": "https://proxy.contoso.com:8443/herald", "no public URL": ""} {
		b, err := connector.Definition(u)
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = b
	}
	return docs
}

func compile(t *testing.T, file string) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	// JSON Schema patterns are ECMA-262 expressions, and Microsoft's use negative lookahead
	// ("^x-(?!ms-)"), which Go's RE2 cannot express.
	c.UseRegexpEngine(ecmaRegexp)
	if err := c.AddResource(file, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(file)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return s
}

type ecma struct{ re *regexp2.Regexp }

func (e ecma) MatchString(s string) bool {
	ok, err := e.re.MatchString(s)
	return err == nil && ok
}

func (e ecma) String() string { return e.re.String() }

func ecmaRegexp(s string) (jsonschema.Regexp, error) {
	re, err := regexp2.Compile(s, regexp2.ECMAScript)
	if err != nil {
		return nil, err
	}
	return ecma{re}, nil
}

func instance(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMicrosoftSchemas validates the definition and apiProperties.json against Microsoft's own connector
// schemas (testdata/, from microsoft/PowerPlatformConnectors; see PROVENANCE.md). They refuse unknown
// x-ms-* keys and a host with a scheme, which the import would also refuse.
func TestMicrosoftSchemas(t *testing.T) {
	t.Parallel()
	swagger := compile(t, "apiDefinition.swagger.schema.stripped.json")
	for name, b := range definitions(t) {
		if err := swagger.Validate(instance(t, b)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	props := compile(t, "paconn-apiProperties.schema.stripped.json")
	if err := props.Validate(instance(t, generated(t)["apiProperties.json"])); err != nil {
		t.Errorf("apiProperties.json: %v", err)
	}

	// The schema is strict enough to catch what a platform would refuse.
	var bad map[string]any
	_ = json.Unmarshal(generated(t)["apiDefinition.swagger.json"], &bad)
	bad["host"] = "https://herald.example.com"
	bad["x-ms-made-up"] = true
	b, _ := json.Marshal(bad)
	if err := swagger.Validate(instance(t, b)); err == nil {
		t.Error("the schema accepted a host with a scheme and an unknown x-ms key")
	}
}

// TestOpenAPIValidator runs go-openapi's OpenAPI 2.0 validator, which checks what the JSON schema
// cannot: references resolve, path parameters are declared, operation ids are unique.
func TestOpenAPIValidator(t *testing.T) {
	t.Parallel()
	for name, b := range definitions(t) {
		doc, err := loads.Analyzed(json.RawMessage(b), "2.0")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := validate.Spec(doc, strfmt.Default); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestConnectorConventions checks what neither validator does but the platforms rely on: PascalCase
// operation ids, a summary and a distinct description on every operation, x-ms-summary and a
// description on every parameter and response property, the async pattern's headers on 202, and every
// status the API answers.
func TestConnectorConventions(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := json.Unmarshal(generated(t)["apiDefinition.swagger.json"], &doc); err != nil {
		t.Fatal(err)
	}
	descriptions := map[string]bool{}
	statuses := map[string]bool{}
	ops := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			if strings.HasPrefix(method, "x-") {
				continue // x-ms-notification-content: what a trigger delivers, not an operation
			}
			op := o.(map[string]any)
			id, _ := op["operationId"].(string)
			ops[id] = true
			if id == "" || strings.ToUpper(id[:1]) != id[:1] || strings.ContainsAny(id, "_- ") {
				t.Errorf("%s %s: operationId %q is not PascalCase", method, path, id)
			}
			desc, _ := op["description"].(string)
			if op["summary"] == "" || desc == "" || descriptions[desc] || desc == op["summary"] {
				t.Errorf("%s: needs a summary and its own description", id)
			}
			descriptions[desc] = true
			for _, p := range op["parameters"].([]any) {
				p := p.(map[string]any)
				if p["x-ms-summary"] == nil || p["description"] == nil {
					t.Errorf("%s: parameter %v needs x-ms-summary and description", id, p["name"])
				}
			}
			for code, r := range op["responses"].(map[string]any) {
				statuses[code] = true
				if code == "202" {
					h, _ := r.(map[string]any)["headers"].(map[string]any)
					if h["Location"] == nil || h["Retry-After"] == nil {
						t.Errorf("%s: 202 must declare Location and Retry-After", id)
					}
				}
			}
		}
	}
	if !ops["PostToSocialMedia"] || !ops["GetPostStatus"] || !ops["WhenAPostIsPublished"] || !ops["DeleteSubscription"] {
		t.Errorf("operations %v, want PostToSocialMedia, GetPostStatus, WhenAPostIsPublished and DeleteSubscription", ops)
	}
	for _, code := range []string{"200", "202", "400", "401", "404", "409", "413", "415", "422", "429", "503"} {
		if !statuses[code] {
			t.Errorf("no operation defines the %s answer", code)
		}
	}
	var walk func(where string, schema map[string]any)
	walk = func(where string, schema map[string]any) {
		props, _ := schema["properties"].(map[string]any)
		for name, p := range props {
			p := p.(map[string]any)
			if p["x-ms-summary"] == nil || p["description"] == nil {
				t.Errorf("%s.%s needs x-ms-summary and description", where, name)
			}
			walk(where+"."+name, p)
		}
	}
	defs := doc["definitions"].(map[string]any)
	for name, d := range defs {
		walk(name, d.(map[string]any))
	}
	// Every field a flow branches on.
	post := defs["Post"].(map[string]any)["properties"].(map[string]any)
	for _, f := range []string{"status", "tweet", "failure_reason", "decision.outcome", "decision.approver", "decision.comment", "publication.remote_id", "publication.url"} {
		parent, child, nested := strings.Cut(f, ".")
		p, ok := post[parent].(map[string]any)
		if ok && nested {
			_, ok = p["properties"].(map[string]any)[child]
		}
		if !ok {
			t.Errorf("the Post schema lacks %s", f)
		}
	}
}

// TestSwaggerCLI runs `swagger-cli validate` (npm @apidevtools/swagger-cli, pinned in
// scripts/connector/package.json and installed there by scripts/test.sh). Outside CI it is skipped
// only when Node.js is missing; under CI=true it must run.
func TestSwaggerCLI(t *testing.T) {
	t.Parallel()
	bin := filepath.Join("..", "..", "..", "scripts", "connector", "node_modules", ".bin", "swagger-cli")
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("Node.js is required under CI=true to run swagger-cli")
		}
		t.Skip("Node.js is not installed; swagger-cli validate runs where it is (scripts/test.sh, CI)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("swagger-cli is not installed: run (cd scripts/connector && npm ci): %v", err)
	}
	dir := t.TempDir()
	for name, b := range definitions(t) {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "validate", file).CombinedOutput()
		if err != nil {
			t.Errorf("swagger-cli validate (%s): %v\n%s", name, err, out)
		}
	}
}
