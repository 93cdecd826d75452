package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// InForce is the configuration /configz shows: cfg as JSON with only the
// fields berth acts on (supportedFields), so that it never reports a
// setting that is not in force. Fields it leaves out are not reported at
// all rather than with a value berth does not honour.
func InForce(cfg *kubeletconfig.KubeletConfiguration) (map[string]any, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("configz: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("configz: %w", err)
	}
	return pruneUnsupported("", doc, supportedFields()), nil
}

// pruneUnsupported keeps, of obj at path, the fields supported covers and
// the objects that lead to one.
func pruneUnsupported(path string, obj map[string]any, supported []string) map[string]any {
	out := map[string]any{}
	for k, v := range obj {
		p := joinPath(path, k)
		if isSupported(p) {
			out[k] = v
			continue
		}
		child, isObj := v.(map[string]any)
		leads := slices.ContainsFunc(supported, func(s string) bool { return strings.HasPrefix(s, p+".") })
		if isObj && leads {
			out[k] = pruneUnsupported(p, child, supported)
		}
	}
	return out
}
