package realnode

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Images are the references of the images the real node runs, all built here (no registry):
// each a one-layer image of a static binary, tagged by the hash of its content (podinfo with
// the exact reference dev's Deployments use, so that they find it and never pull).
type Images struct {
	Pause, Probe, CoreDNS, Podinfo string
	tars                           []string
}

type imageSpec struct {
	repo  string // without tag; "" for a fixed reference
	ref   string
	files map[string]string // path in the image -> file on the host (a directory: copied whole)
	cfg   v1.Config
}

// BuildImages writes each image as a docker-archive tar into cache (named by content hash: a
// second run reuses it) and returns their references.
func BuildImages(bins, tools, podinfo, podinfoRef, cache string) (Images, error) {
	specs := map[string]*imageSpec{
		"pause":   {repo: "cloudlab.local/pause", files: map[string]string{"pause": filepath.Join(bins, "pause")}, cfg: v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"}},
		"probe":   {repo: "cloudlab.local/probe", files: map[string]string{"probe": filepath.Join(bins, "probe")}, cfg: v1.Config{Entrypoint: []string{"/probe"}, Cmd: []string{"sleep"}, User: "65532:65532"}},
		"coredns": {repo: "cloudlab.local/coredns", files: map[string]string{"coredns": filepath.Join(tools, "coredns")}, cfg: v1.Config{Entrypoint: []string{"/coredns"}}},
		// As podinfo's own image (its Dockerfile): /home/app/podinfo and ui/, WORKDIR /home/app,
		// CMD ["./podinfo"] and no ENTRYPOINT, a non-root user.
		"podinfo": {ref: podinfoRef, files: map[string]string{"home/app/podinfo": filepath.Join(podinfo, "podinfo"), "home/app/ui": filepath.Join(podinfo, "ui")},
			cfg: v1.Config{Cmd: []string{"./podinfo"}, WorkingDir: "/home/app", User: "100:101"}},
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Images{}, err
	}
	var im Images
	for _, key := range []string{"pause", "probe", "coredns", "podinfo"} {
		s := specs[key]
		layer, sum, err := layerOf(s.files)
		if err != nil {
			return im, fmt.Errorf("image %s: %w", key, err)
		}
		if s.ref == "" {
			s.ref = s.repo + ":" + sum[:12]
		}
		tarPath := filepath.Join(cache, key+"-"+sum[:16]+".tar")
		if _, err := os.Stat(tarPath); err != nil {
			if err := writeImage(s, layer, tarPath); err != nil {
				return im, fmt.Errorf("image %s: %w", key, err)
			}
		}
		im.tars = append(im.tars, tarPath)
		switch key {
		case "pause":
			im.Pause = s.ref
		case "probe":
			im.Probe = s.ref
		case "coredns":
			im.CoreDNS = s.ref
		case "podinfo":
			im.Podinfo = s.ref
		}
	}
	return im, nil
}

// layerOf makes one uncompressed layer (a tar) of the files, and its hash (with the paths).
func layerOf(files map[string]string) ([]byte, string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	addDirs := func(p string) error {
		var parents []string
		for d := filepath.Dir(p); d != "." && d != "/"; d = filepath.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var keys []string
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, dst := range keys {
		src := files[dst]
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			target := filepath.ToSlash(filepath.Join(dst, rel))
			if err := addDirs(target); err != nil {
				return err
			}
			if d.IsDir() {
				if !dirs[target] {
					dirs[target] = true
					return tw.WriteHeader(&tar.Header{Name: target + "/", Typeflag: tar.TypeDir, Mode: 0o755})
				}
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mode := int64(0o644)
			if info, _ := d.Info(); info != nil && info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			if err := tw.WriteHeader(&tar.Header{Name: target, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		})
		if err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	h := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(h[:]), nil
}

func writeImage(s *imageSpec, layerTar []byte, path string) error {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = s.cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	ref, err := name.NewTag(s.ref)
	if err != nil {
		return err
	}
	tmp := path + ".partial"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// importImages loads every image into containerd's k8s.io namespace (the one the CRI uses), at once.
func (n *Node) importImages(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(n.images.tars))
	for i, t := range n.images.tars {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.CommandContext(ctx, n.tool("ctr"), "--address", n.Socket(), "-n", "k8s.io", "images", "import", "--local", t).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("ctr images import %s: %v: %s", t, err, strings.TrimSpace(string(out)))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
