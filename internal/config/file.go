package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// The only file format berth reads, the upstream one.
const (
	APIVersion = "kubelet.config.k8s.io/v1beta1"
	Kind       = "KubeletConfiguration"
)

// LoadFile reads a KubeletConfiguration file (YAML or JSON). It returns the
// configuration exactly as written, not defaulted, with relative paths made
// relative to the file's directory as upstream does, and the JSON paths of
// the fields the file sets (e.g. "authentication.webhook.enabled").
// Errors name the file and, where there is one, the field.
func LoadFile(path string) (*kubeletconfig.KubeletConfiguration, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config file: %w", err)
	}
	cfg, set, err := Decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("config file %q: %w", path, err)
	}
	resolveRelativePaths(cfg, filepath.Dir(path))
	return cfg, set, nil
}

// Decode parses a KubeletConfiguration document strictly: the apiVersion and
// kind must be the upstream ones, and unknown fields (matched
// case-sensitively), duplicate keys and values of the wrong type are errors
// that name the field. It also returns the JSON paths of the fields set.
func Decode(data []byte) (*kubeletconfig.KubeletConfiguration, []string, error) {
	js, set, err := decodeJSON(data)
	if err != nil {
		return nil, nil, err
	}
	// The walk has checked every field; decoding strictly again guards
	// against anything it might miss.
	var cfg kubeletconfig.KubeletConfiguration
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, nil, fmt.Errorf("decode: %w", err)
	}
	return &cfg, set, nil
}

// decodeJSON checks a KubeletConfiguration document as Decode does and
// returns it as JSON, with the JSON paths of the fields it sets.
func decodeJSON(data []byte) ([]byte, []string, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, errors.New("file is empty")
	}
	// JSON is YAML, so one path handles both; the strict variant rejects
	// duplicate keys, which plain JSON decoding would silently merge.
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		// The YAML library spreads its messages over several lines.
		return nil, nil, fmt.Errorf("parse: %s", strings.Join(strings.Fields(err.Error()), " "))
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("parse: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("want a %s object, got %s", Kind, describeJSON(doc))
	}
	if err := checkTypeMeta(obj); err != nil {
		return nil, nil, err
	}

	var w fieldWalker
	w.walk("", obj, reflect.TypeFor[kubeletconfig.KubeletConfiguration](), true)
	if len(w.errs) > 0 {
		return nil, nil, joinErrors(w.errs)
	}
	return js, w.set, nil
}

func checkTypeMeta(obj map[string]any) error {
	for _, want := range []struct{ field, value string }{
		{"apiVersion", APIVersion},
		{"kind", Kind},
	} {
		got, present := obj[want.field]
		if !present || got == nil {
			return fmt.Errorf("field %q is missing, want %q", want.field, want.value)
		}
		if got != want.value {
			return fmt.Errorf("field %q: %s is not supported, want %q", want.field, describeJSON(got), want.value)
		}
	}
	return nil
}

// resolveRelativePaths makes the file's relative paths relative to dir, the
// file's directory, for the same fields as upstream.
func resolveRelativePaths(cfg *kubeletconfig.KubeletConfiguration, dir string) {
	paths := []*string{
		&cfg.StaticPodPath,
		&cfg.Authentication.X509.ClientCAFile,
		&cfg.TLSCertFile,
		&cfg.TLSPrivateKeyFile,
		&cfg.VolumePluginDir,
		&cfg.PodLogsDir,
	}
	if cfg.ResolverConfig != nil {
		paths = append(paths, cfg.ResolverConfig)
	}
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// describeJSON names a decoded JSON value for an error message.
func describeJSON(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q", v)
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	default:
		return fmt.Sprint(v)
	}
}

// joinErrors puts several problems on one line, so the caller can print a
// single "berth: ..." line; errors.Is and errors.As still see each one.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errorList(errs)
}

type errorList []error

func (l errorList) Error() string {
	msgs := make([]string, len(l))
	for i, err := range l {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (l errorList) Unwrap() []error { return l }
