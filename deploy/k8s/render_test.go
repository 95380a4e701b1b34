package k8s_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// objects is one rendered kustomization, decoded into the Kubernetes API types.
type objects struct {
	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	ConfigMaps      []*corev1.ConfigMap
	Namespaces      []*corev1.Namespace
	PDBs            []*policyv1.PodDisruptionBudget
	NetworkPolicies []*networkingv1.NetworkPolicy
	Ingresses       []*networkingv1.Ingress
}

// render builds the kustomization in dir of fsys, as `kubectl apply -k` would, and decodes every object.
func render(fsys filesys.FileSystem, dir string) (*objects, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	objs := &objects{}
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		if err := objs.add(r.GetApiVersion(), r.GetKind(), y); err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", dir, r.GetKind(), r.GetName(), err)
		}
	}
	return objs, nil
}

// add decodes one object strictly: an unknown or misspelt field is an error, as is a kind this
// deployment does not expect (each new kind gets its checks before it is allowed).
func (o *objects) add(apiVersion, kind string, y []byte) error {
	var err error
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		o.Deployments, err = decode(y, o.Deployments)
	case "v1 Service":
		o.Services, err = decode(y, o.Services)
	case "v1 ConfigMap":
		o.ConfigMaps, err = decode(y, o.ConfigMaps)
	case "v1 Namespace":
		o.Namespaces, err = decode(y, o.Namespaces)
	case "policy/v1 PodDisruptionBudget":
		o.PDBs, err = decode(y, o.PDBs)
	case "networking.k8s.io/v1 NetworkPolicy":
		o.NetworkPolicies, err = decode(y, o.NetworkPolicies)
	case "networking.k8s.io/v1 Ingress":
		o.Ingresses, err = decode(y, o.Ingresses)
	default:
		return fmt.Errorf("unexpected kind %s %s: add it to objects with its checks", apiVersion, kind)
	}
	return err
}

func decode[T any](y []byte, list []*T) ([]*T, error) {
	v := new(T)
	if err := yaml.UnmarshalStrict(y, v); err != nil {
		return list, err
	}
	return append(list, v), nil
}

// kustomizations are the base and every overlay, relative to this directory.
func kustomizations(t *testing.T) []string {
	t.Helper()
	dirs := []string{"base"}
	overlays, err := os.ReadDir("overlays")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range overlays {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("overlays", e.Name()))
		}
	}
	if len(dirs) < 2 {
		t.Fatal("no overlays found under overlays/")
	}
	return dirs
}

func renderDir(t *testing.T, dir string) *objects {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := render(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
