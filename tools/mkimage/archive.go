package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	annotationRefName   = "org.opencontainers.image.ref.name"
	annotationImageName = "io.containerd.image.name"

	// defaultPath is what docker and containerd put in an image without a
	// PATH; without it, commands such as "sh" would not be found.
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// imageSpec is what the image is called and how its process starts.
type imageSpec struct {
	Name    string
	Arch    string
	Created time.Time
	Config  imageConfig
}

// imageConfig is the "config" object of an OCI image configuration.
type imageConfig struct {
	User       string   `json:"User,omitempty"`
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// blob is one content-addressed file of the layout.
type blob struct {
	desc descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{
		desc: descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))},
		data: data,
	}
}

func jsonBlob(mediaType string, v any) (blob, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return blob{}, err
	}
	return newBlob(mediaType, data), nil
}

// writeArchive builds the image and writes it to out atomically, so that a
// reader (or a build cache check) never sees half an archive. Blobs are held
// in memory: test images are a few megabytes.
func writeArchive(out string, spec imageSpec, tree *fileTree) error {
	blobs, index, err := buildImage(spec, tree)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeLayout(tmp, blobs, index, spec.Created); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", out, err)
	}
	// CreateTemp makes the file private; an image archive is not a secret.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// buildImage returns the layer, config and manifest blobs and the index that
// names the manifest.
func buildImage(spec imageSpec, tree *fileTree) ([]blob, []byte, error) {
	var layerTar, layerGz bytes.Buffer
	gz := gzip.NewWriter(&layerGz) // zero header time: the output stays reproducible
	if err := tree.writeTar(io.MultiWriter(&layerTar, gz), spec.Created); err != nil {
		return nil, nil, fmt.Errorf("build layer: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, nil, err
	}
	diffID := sha256.Sum256(layerTar.Bytes())
	layer := newBlob(mediaTypeLayer, layerGz.Bytes())

	cfg := spec.Config
	if !hasPath(cfg.Env) {
		cfg.Env = append([]string{defaultPath}, cfg.Env...)
	}
	created := spec.Created.Format(time.RFC3339)
	config, err := jsonBlob(mediaTypeConfig, map[string]any{
		"created":      created,
		"architecture": spec.Arch,
		"os":           "linux",
		"config":       cfg,
		"rootfs": map[string]any{
			"type":     "layers",
			"diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])},
		},
		"history": []map[string]string{{"created": created, "created_by": "berth tools/mkimage"}},
	})
	if err != nil {
		return nil, nil, err
	}
	manifest, err := jsonBlob(mediaTypeManifest, map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        config.desc,
		"layers":        []descriptor{layer.desc},
	})
	if err != nil {
		return nil, nil, err
	}

	desc := manifest.desc
	desc.Platform = &platform{Architecture: spec.Arch, OS: "linux"}
	desc.Annotations = map[string]string{
		annotationImageName: spec.Name,
		annotationRefName:   tagOf(spec.Name),
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeIndex,
		"manifests":     []descriptor{desc},
	})
	if err != nil {
		return nil, nil, err
	}
	return []blob{layer, config, manifest}, index, nil
}

func hasPath(env []string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return true
		}
	}
	return false
}

// tagOf returns the tag of an image name, "latest" when it has none.
func tagOf(name string) string {
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[i+1:]
	}
	return "latest"
}

// writeLayout writes the OCI image layout as a tar stream.
func writeLayout(w io.Writer, blobs []blob, index []byte, mtime time.Time) error {
	tw := tar.NewWriter(w)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime})
	}
	file := func(name string, data []byte) error {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	for _, b := range blobs {
		if err := file("blobs/sha256/"+strings.TrimPrefix(b.desc.Digest, "sha256:"), b.data); err != nil {
			return err
		}
	}
	if err := file("index.json", index); err != nil {
		return err
	}
	return tw.Close()
}
