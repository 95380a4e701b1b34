package k8s_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestManifests renders the base and every overlay, decodes every object strictly into the Kubernetes
// API types, and checks the invariants of check.
func TestManifests(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations(t) {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			for _, err := range check(renderDir(t, dir)) {
				t.Error(err)
			}
		})
	}
}

// TestStrictDecoding shows that a misspelt field fails the rendering's decoding rather than being dropped
// (Kubernetes would drop it, and a probe or a limit would silently be missing).
func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	fsys := filesys.MakeFsInMemory()
	write := func(name, text string) {
		if err := fsys.WriteFile(name, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	write("/k/kustomization.yaml", "resources: [deployment.yaml]\n")
	write("/k/deployment.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers:
        - name: x
          image: x:1
          readinessProbe:
            httpGet: {paht: /readyz, port: 8080}
`)
	_, err := render(fsys, "/k")
	if err == nil || !strings.Contains(err.Error(), "paht") {
		t.Fatalf("render with a misspelt field: %v, want an error naming it", err)
	}
	write("/k/deployment.yaml", strings.Replace(mustRead(t, fsys, "/k/deployment.yaml"), "paht", "path", 1))
	if _, err := render(fsys, "/k"); err != nil {
		t.Fatalf("render with the field spelt right: %v", err)
	}
}

func mustRead(t *testing.T, fsys filesys.FileSystem, name string) string {
	t.Helper()
	b, err := fsys.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestChecksCatch breaks the production rendering one way at a time and expects check to name each break:
// the invariants hold because they are checked, not because check finds nothing to say.
func TestChecksCatch(t *testing.T) {
	t.Parallel()
	deployment := func(o *objects, name string) *appsv1.Deployment {
		for _, d := range o.Deployments {
			if d.Name == name {
				return d
			}
		}
		t.Fatalf("no Deployment %s", name)
		return nil
	}
	policy := func(o *objects, name string) *networkingv1.NetworkPolicy {
		for _, np := range o.NetworkPolicies {
			if np.Name == name {
				return np
			}
		}
		t.Fatalf("no NetworkPolicy %s", name)
		return nil
	}
	main := func(d *appsv1.Deployment) *corev1.Container { return &d.Spec.Template.Spec.Containers[0] }
	breaks := []struct {
		name   string
		break_ func(o *objects)
		want   string
	}{
		{"latest image", func(o *objects) { main(deployment(o, gateway)).Image = "ghcr.io/heraldhq/herald-gateway:latest" }, "uses the tag latest"},
		{"untagged image", func(o *objects) { main(deployment(o, approval)).Image = "ghcr.io/heraldhq/herald-approval" }, "not pinned"},
		{"untagged init image", func(o *objects) { deployment(o, publisher).Spec.Template.Spec.InitContainers[0].Image = "busybox" }, "not pinned"},
		{"no readiness probe", func(o *objects) { main(deployment(o, publisher)).ReadinessProbe = nil }, "no HTTP readiness probe"},
		{"liveness on readyz", func(o *objects) { main(deployment(o, approval)).LivenessProbe.HTTPGet.Path = "/readyz" }, "want /healthz"},
		{"probe on an undeclared port", func(o *objects) { main(deployment(o, gateway)).ReadinessProbe.HTTPGet.Port = intstr.FromInt32(9999) }, "does not declare"},
		{"no preStop sleep", func(o *objects) { main(deployment(o, approval)).Lifecycle = nil }, "no preStop sleep"},
		{"no memory limit", func(o *objects) { delete(main(deployment(o, gateway)).Resources.Limits, corev1.ResourceMemory) }, "no memory limit"},
		{"init container without limits", func(o *objects) {
			deployment(o, approval).Spec.Template.Spec.InitContainers[0].Resources = corev1.ResourceRequirements{}
		}, "no cpu request"},
		{"root", func(o *objects) { f := false; main(deployment(o, publisher)).SecurityContext.RunAsNonRoot = &f }, "runAsNonRoot is not true"},
		{"root pod, container silent", func(o *objects) {
			f := false
			d := deployment(o, gateway)
			d.Spec.Template.Spec.SecurityContext.RunAsNonRoot = &f
			main(d).SecurityContext.RunAsNonRoot = nil
		}, "runAsNonRoot is not true"},
		{"uid 0", func(o *objects) { var z int64; main(deployment(o, gateway)).SecurityContext.RunAsUser = &z }, "runs as uid 0"},
		{"writable root", func(o *objects) {
			f := false
			main(deployment(o, approval)).SecurityContext.ReadOnlyRootFilesystem = &f
		}, "root filesystem is writable"},
		{"capability kept", func(o *objects) { main(deployment(o, gateway)).SecurityContext.Capabilities.Drop = nil }, "drop ALL"},
		{"escalation", func(o *objects) { main(deployment(o, gateway)).SecurityContext.AllowPrivilegeEscalation = nil }, "allowPrivilegeEscalation"},
		{"no seccomp", func(o *objects) { deployment(o, gateway).Spec.Template.Spec.SecurityContext.SeccompProfile = nil }, "seccomp"},
		{"one replica", func(o *objects) { one := int32(1); deployment(o, approval).Spec.Replicas = &one }, "fewer than 2 replicas"},
		{"no PDB", func(o *objects) {
			o.PDBs = slices.DeleteFunc(o.PDBs, func(p *policyv1.PodDisruptionBudget) bool { return p.Name == publisher })
		}, "0 PodDisruptionBudgets"},
		{"X credentials in the gateway", func(o *objects) {
			d := deployment(o, gateway)
			d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes, corev1.Volume{Name: "x", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "herald-x-credentials"}}})
		}, "reads Secret herald-x-credentials"},
		{"X credential variable in the approval service", func(o *objects) {
			c := main(deployment(o, approval))
			c.Env = append(c.Env, corev1.EnvVar{Name: "HERALD_X_CONSUMER_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "herald-approval-nats"}, Key: "password"}}})
		}, "sets the X credential variable HERALD_X_CONSUMER_SECRET"},
		{"signing key in the publisher", func(o *objects) {
			d := deployment(o, publisher)
			d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes, corev1.Volume{Name: "k", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "herald-approval-seal"}}}}}}})
		}, "reads Secret herald-approval-seal"},
		{"an unlisted Secret", func(o *objects) {
			c := main(deployment(o, gateway))
			c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "everything"}}})
		}, "reads Secret everything"},
		{"approval reachable from anywhere", func(o *objects) {
			np := policy(o, approval)
			np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: np.Spec.Ingress[0].Ports})
		}, "lets anyone in"},
		{"gateway leaving the cluster", func(o *objects) {
			np := policy(o, gateway)
			np.Spec.Egress = append(np.Spec.Egress, policy(o, publisher).Spec.Egress[1])
		}, "lets it out of the cluster"},
		{"publisher leaving on another port", func(o *objects) {
			np := policy(o, publisher)
			np.Spec.Egress[1].Ports[0].Port = ptrTo(intstr.FromInt32(80))
		}, "ports other than 443"},
		{"mail to the whole internet", func(o *objects) { policy(o, approval).Spec.Egress[1].To[0].IPBlock.CIDR = "0.0.0.0/0" }, "name the relay's addresses"},
		{"egress anywhere", func(o *objects) {
			np := policy(o, approval)
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{})
		}, "lets it reach anything"},
		{"no default deny", func(o *objects) {
			o.NetworkPolicies = slices.DeleteFunc(o.NetworkPolicies, func(np *networkingv1.NetworkPolicy) bool { return np.Name == "herald-default-deny" })
		}, "denies all ingress and egress"},
		{"pods without the label the shared policies select", func(o *objects) {
			delete(deployment(o, gateway).Spec.Template.Labels, "app.kubernetes.io/part-of")
		}, "herald-gateway: no NetworkPolicy denies its pods everything by default"},
		{"no DNS", func(o *objects) {
			o.NetworkPolicies = slices.DeleteFunc(o.NetworkPolicies, func(np *networkingv1.NetworkPolicy) bool { return np.Name == "herald-dns-and-nats" })
		}, "reach DNS (port 53)"},
		{"missing env ConfigMap", func(o *objects) {
			main(deployment(o, publisher)).EnvFrom[0].ConfigMapRef.Name = "nowhere"
		}, "ConfigMap nowhere, which is not in the rendering"},
	}
	for _, b := range breaks {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			o := renderDir(t, "overlays/production")
			b.break_(o)
			errs := check(o)
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), b.want) }) {
				t.Errorf("check found %v, want an error containing %q", errs, b.want)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// runtimeVariables are the Go runtime's, not Herald's.
var runtimeVariables = []string{"GOMEMLIMIT"}

// TestEnvironmentVariables holds every variable the manifests set to the services' configuration: the
// README's table, which deploy/stack's test holds to the Config structs' env tags. A misspelt variable
// would be ignored by the service, and its default used.
func TestEnvironmentVariables(t *testing.T) {
	t.Parallel()
	known := readmeVariables(t)
	for _, dir := range kustomizations(t) {
		o := renderDir(t, dir)
		for _, d := range o.Deployments {
			for _, c := range append(slices.Clone(d.Spec.Template.Spec.InitContainers), d.Spec.Template.Spec.Containers...) {
				names, err := envNames(o, d, c)
				if err != nil {
					t.Error(err)
				}
				for name, from := range names {
					if !known[name] && !slices.Contains(runtimeVariables, name) {
						t.Errorf("%s: %s/%s sets %s (%s), which no service reads", dir, d.Name, c.Name, name, from)
					}
				}
			}
		}
	}
}

// readmeVariables are the HERALD_* names in the first column of the README's configuration table.
func readmeVariables(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Configuration\n")
	if start < 0 {
		t.Fatal("README.md has no ## Configuration section")
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	name := regexp.MustCompile("`(HERALD_[A-Z0-9_]+)`")
	vars := map[string]bool{}
	for line := range strings.Lines(section) {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 3 {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			vars[m[1]] = true
		}
	}
	if len(vars) < 20 {
		t.Fatalf("found %d variables in the README's configuration table; the parse is broken", len(vars))
	}
	return vars
}
