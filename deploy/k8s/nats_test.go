package k8s_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// natsValues is the part of the NATS chart's values this deployment depends on.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `json:"enabled"`
			Replicas int  `json:"replicas"`
		} `json:"cluster"`
		JetStream struct {
			Enabled bool           `json:"enabled"`
			Merge   map[string]any `json:"merge"`
		} `json:"jetstream"`
		NATS struct {
			TLS struct {
				Enabled bool `json:"enabled"`
			} `json:"tls"`
		} `json:"nats"`
		Merge map[string]any `json:"merge"`
	} `json:"config"`
	Container struct {
		Image struct {
			Tag string `json:"tag"`
		} `json:"image"`
		Env map[string]any `json:"env"`
	} `json:"container"`
}

// TestNATSChart checks the NATS chart's values and install script: a pinned chart, a three-node JetStream
// cluster that fsyncs before acknowledging, TLS, and Herald's generated users with every password hash
// they read provided.
func TestNATSChart(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("nats/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v natsValues
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if !v.Config.Cluster.Enabled || v.Config.Cluster.Replicas != 3 {
		t.Errorf("cluster enabled %v with %d replicas, want a three-node cluster", v.Config.Cluster.Enabled, v.Config.Cluster.Replicas)
	}
	if !v.Config.JetStream.Enabled {
		t.Error("JetStream is not enabled")
	}
	if got := v.Config.JetStream.Merge["sync_interval"]; got != "always" {
		t.Errorf("jetstream sync_interval %v, want always", got)
	}
	if !v.Config.NATS.TLS.Enabled {
		t.Error("client TLS is not enabled")
	}
	if err := pinned("nats:" + v.Container.Image.Tag); err != nil {
		t.Error(err)
	}
	var includes []string
	for k, val := range v.Config.Merge {
		if strings.HasSuffix(k, "$include") {
			includes = append(includes, val.(string))
		}
	}
	if !slices.ContainsFunc(includes, func(p string) bool { return strings.HasSuffix(p, "/herald-auth.conf") }) {
		t.Errorf("config includes %v, not herald-auth.conf", includes)
	}

	auth, err := os.ReadFile("../nats/herald-auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	hashes := regexp.MustCompile(`\$(HERALD_NATS_[A-Z]+_PASSWORD_HASH)`).FindAllStringSubmatch(string(auth), -1)
	if len(hashes) != 3 {
		t.Fatalf("herald-auth.conf reads %d password hashes, want 3 (one per service)", len(hashes))
	}
	for _, h := range hashes {
		if _, ok := v.Container.Env[h[1]]; !ok {
			t.Errorf("herald-auth.conf reads $%s, which values.yaml does not set", h[1])
		}
	}

	script, err := os.ReadFile("nats/install.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^chart_version=\d+\.\d+\.\d+$`).Match(script) || !strings.Contains(string(script), `--version "$chart_version"`) {
		t.Error("nats/install.sh does not install a pinned chart version")
	}
	if !strings.Contains(string(script), "../../nats/herald-auth.conf") {
		t.Error("nats/install.sh does not load deploy/nats/herald-auth.conf, the generated users")
	}
}
