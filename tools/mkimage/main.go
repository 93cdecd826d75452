// Command mkimage builds a single-layer OCI image archive from local files,
// without docker and without a registry, so that tests can import images with
// `ctr -n k8s.io images import ARCHIVE` or push them with skopeo.
//
// The archive is an OCI image layout in a tar (oci-layout, index.json,
// blobs/sha256/...). Its one manifest carries both the
// io.containerd.image.name annotation (the full name, which ctr uses) and
// org.opencontainers.image.ref.name (the tag, as the OCI spec and skopeo want).
// Output is byte-for-byte reproducible: entries are sorted, owned by root and
// stamped with a fixed time, so unchanged inputs give unchanged digests.
//
// Usage:
//
//	mkimage -o pause.tar -name registry.k8s.io/pause:3.10 \
//	    -file _output/pause:/pause:0755 -entrypoint '["/pause"]'
//	mkimage -o busybox.tar -name berth.local/busybox:1.0 -rootfs DIR -cmd '["sh"]'
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	var (
		spec       imageSpec
		out        = fs.String("o", "", "output archive path (required)")
		rootfs     = fs.String("rootfs", "", "directory whose tree becomes the image's filesystem")
		files      stringList
		env        stringList
		entrypoint = fs.String("entrypoint", "", `entrypoint as a JSON array, e.g. '["/pause"]'`)
		cmd        = fs.String("cmd", "", `default arguments as a JSON array, e.g. '["sh"]'`)
	)
	fs.StringVar(&spec.Name, "name", "", "image name, e.g. registry.k8s.io/pause:3.10 (required)")
	fs.StringVar(&spec.Config.WorkingDir, "workdir", "", "working directory")
	fs.StringVar(&spec.Config.User, "user", "", "user to run as")
	fs.StringVar(&spec.Arch, "arch", runtime.GOARCH, "image architecture")
	fs.Var(&files, "file", "SRC:DEST[:MODE] file to add (octal MODE defaults to SRC's); repeatable")
	fs.Var(&env, "env", "KEY=VALUE environment entry; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || spec.Name == "" {
		return fmt.Errorf("-o and -name are required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if spec.Config.Entrypoint, err = parseArgv("entrypoint", *entrypoint); err != nil {
		return err
	}
	if spec.Config.Cmd, err = parseArgv("cmd", *cmd); err != nil {
		return err
	}
	spec.Config.Env = env
	if spec.Created, err = sourceDateEpoch(); err != nil {
		return err
	}

	var tree fileTree
	if *rootfs != "" {
		if err := tree.addDir(*rootfs); err != nil {
			return err
		}
	}
	for _, f := range files {
		src, dest, mode, err := parseFileFlag(f)
		if err != nil {
			return err
		}
		if err := tree.addFile(src, dest, mode); err != nil {
			return err
		}
	}
	return writeArchive(*out, spec, &tree)
}

func parseArgv(name, v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var argv []string
	if err := json.Unmarshal([]byte(v), &argv); err != nil {
		return nil, fmt.Errorf("-%s must be a JSON array of strings: %w", name, err)
	}
	return argv, nil
}

// parseFileFlag splits SRC:DEST[:MODE]; a zero mode means "keep SRC's mode".
func parseFileFlag(v string) (src, dest string, mode os.FileMode, err error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", "", 0, fmt.Errorf("-file %q: want SRC:DEST[:MODE]", v)
	}
	if len(parts) == 3 {
		m, err := strconv.ParseUint(parts[2], 8, 32)
		if err != nil {
			return "", "", 0, fmt.Errorf("-file %q: mode: %w", v, err)
		}
		mode = os.FileMode(m) & os.ModePerm
	}
	return parts[0], parts[1], mode, nil
}

// sourceDateEpoch honours the reproducible-builds convention; without it the
// image claims the Unix epoch, which keeps digests independent of build time.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
	}
	return time.Unix(secs, 0).UTC(), nil
}
