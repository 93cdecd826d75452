package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// dropInExt is the suffix of the files --config-dir reads; others are
// skipped, as upstream.
const dropInExt = ".conf"

// mergeDropIns merges the drop-in files of dir over base, as upstream's
// --config-dir does: every file ending in .conf in dir and its
// subdirectories, in the order filepath.WalkDir visits them (lexical, a
// subdirectory's files where its name sorts), each a complete
// KubeletConfiguration document (apiVersion and kind included) applied to
// what came before as a JSON merge patch (RFC 7386): objects merge key by
// key, lists and values replace, null removes a field (its default comes
// back). base must be defaulted, as upstream's is, so that a drop-in that
// sets one field of a pair (nodeStatusUpdateFrequency, say) does not
// change how the other is defaulted. Unlike upstream, which drops unknown
// fields of a drop-in silently, berth reads each file as strictly as
// --config. It returns the merged configuration, the JSON paths the
// drop-ins set and the files skipped.
func mergeDropIns(base *kubeletconfig.KubeletConfiguration, dir string) (*kubeletconfig.KubeletConfiguration, []string, []string, error) {
	js, err := json.Marshal(base)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("config dir %q: %w", dir, err)
	}
	merged, err := decodeAny(js)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("config dir %q: %w", dir, err)
	}
	var set, skipped []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if filepath.Ext(d.Name()) != dropInExt {
			skipped = append(skipped, path)
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read drop-in: %w", err)
		}
		patchJSON, fileSet, err := decodeJSON(data)
		if err != nil {
			return fmt.Errorf("drop-in %q: %w", path, err)
		}
		patch, err := decodeAny(patchJSON)
		if err != nil {
			return fmt.Errorf("drop-in %q: %w", path, err)
		}
		merged = mergePatch(merged, patch)
		set = append(set, fileSet...)
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("config dir %q: %w", dir, err)
	}
	out, err := json.Marshal(merged)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("config dir %q: %w", dir, err)
	}
	cfg := &kubeletconfig.KubeletConfiguration{}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, nil, nil, fmt.Errorf("config dir %q: merged configuration: %w", dir, err)
	}
	return cfg, set, skipped, nil
}

// mergePatch applies an RFC 7386 JSON merge patch to target (decoded
// JSON, changed in place) and returns the result.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// decodeAny decodes JSON keeping numbers exact (json.Number).
func decodeAny(js []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}
