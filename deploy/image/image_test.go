// Package image_test builds Herald's container images with scripts/images.sh and inspects them.
package image_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// maxImageBytes bounds each image: a static Go binary and a CA bundle (about 25 MB measured); a base
// image with a distribution in it would be well over.
const maxImageBytes = 60 << 20

// engine is the container engine images.sh will use, or "" when there is none.
func engine(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("podman"); err == nil {
		return "podman"
	}
	if _, err := exec.LookPath("docker"); err == nil && exec.Command("docker", "info").Run() == nil {
		return "docker"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("neither podman nor a running docker is installed; CI needs one (.ci/run installs podman)")
	}
	t.Skip("neither podman nor a running docker is installed (apt-get install podman); skipping the image test")
	return ""
}

// inspected is what `podman image inspect` (and docker's) say of an image, in part.
type inspected struct {
	Size   int64
	Config struct {
		User       string
		Entrypoint []string
		Cmd        []string
		Env        []string
		Labels     map[string]string
	}
}

// TestImages builds the three images with scripts/images.sh and checks what a cluster relies on: a
// numeric non-root user, the binary as entrypoint, the OCI labels naming version, revision and source,
// a bounded size, and nothing in the file system but the binary and the CA bundle (so no shell).
func TestImages(t *testing.T) {
	eng := engine(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// Read before the build, which labels the images with the revision checked out when it starts.
	revision, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	repo := "localhost/herald-imagetest"
	version := fmt.Sprintf("test-%d", time.Now().UnixNano())
	cmd := exec.Command(filepath.Join(root, "scripts/images.sh"))
	cmd.Env = append(os.Environ(), "IMAGE_REPO="+repo, "VERSION="+version, "CONTAINER_ENGINE="+eng)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/images.sh: %v\n%s", err, out)
	}
	t.Logf("scripts/images.sh built the three images in %s:\n%s", time.Since(start).Round(time.Second), out)
	for _, svc := range []string{"gateway", "approval", "publisher"} {
		image := repo + "/herald-" + svc + ":" + version
		t.Cleanup(func() { _ = exec.Command(eng, "rmi", "--force", image).Run() })
		t.Run(svc, func(t *testing.T) {
			out, err := exec.Command(eng, "image", "inspect", image).Output()
			if err != nil {
				t.Fatalf("%s image inspect %s: %v", eng, image, err)
			}
			var got []inspected
			if err := json.Unmarshal(out, &got); err != nil || len(got) != 1 {
				t.Fatalf("inspect %s: %v (%d images)", image, err, len(got))
			}
			img := got[0]
			if img.Config.User != "65532:65532" {
				t.Errorf("user %q, want the numeric non-root 65532:65532", img.Config.User)
			}
			if !slices.Equal(img.Config.Entrypoint, []string{"/herald"}) || len(img.Config.Cmd) != 0 {
				t.Errorf("entrypoint %q cmd %q, want [/herald] and no cmd", img.Config.Entrypoint, img.Config.Cmd)
			}
			wantLabels := map[string]string{
				"org.opencontainers.image.title":    "herald-" + svc,
				"org.opencontainers.image.version":  version,
				"org.opencontainers.image.revision": strings.TrimSpace(string(revision)),
				"org.opencontainers.image.source":   "https://github.com/heraldhq/herald",
			}
			for k, want := range wantLabels {
				if img.Config.Labels[k] != want {
					t.Errorf("label %s = %q, want %q", k, img.Config.Labels[k], want)
				}
			}
			if img.Size <= 0 || img.Size > maxImageBytes {
				t.Errorf("size %d bytes, want at most %d", img.Size, maxImageBytes)
			}
			t.Logf("%s: %.1f MB", image, float64(img.Size)/1e6)
			files := imageFiles(t, eng, image)
			want := []string{"etc/ssl/certs/ca-certificates.crt", "herald"}
			if !slices.Equal(files, want) {
				t.Errorf("files in the image %q, want only %q", files, want)
			}
		})
	}
}

// imageFiles lists the regular files and links of every layer of image, from `save` (the docker-archive
// layout both engines write: manifest.json naming the layer tarballs), sorted.
func imageFiles(t *testing.T, eng, image string) []string {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "image.tar")
	if out, err := exec.Command(eng, "save", "--output", archive, image).CombinedOutput(); err != nil {
		t.Fatalf("%s save: %v\n%s", eng, err, out)
	}
	entries := map[string][]byte{}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			entries[strings.TrimPrefix(h.Name, "./")] = b
		}
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json of the saved image: %v", err)
	}
	var files []string
	for _, layer := range manifest[0].Layers {
		b, ok := entries[layer]
		if !ok {
			t.Fatalf("layer %s missing from the saved image", layer)
		}
		var r io.Reader = bytes.NewReader(b)
		if br := bufio.NewReader(r); isGzip(br) {
			if r, err = gzip.NewReader(br); err != nil {
				t.Fatal(err)
			}
		} else {
			r = br
		}
		lt := tar.NewReader(r)
		for {
			h, err := lt.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", layer, err)
			}
			if h.Typeflag != tar.TypeDir {
				files = append(files, strings.TrimPrefix(h.Name, "./"))
			}
		}
	}
	slices.Sort(files)
	return files
}

func isGzip(r *bufio.Reader) bool {
	b, err := r.Peek(2)
	return err == nil && b[0] == 0x1f && b[1] == 0x8b
}
