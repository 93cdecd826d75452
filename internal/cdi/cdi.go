package cdi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"
	specs "tags.cncf.io/container-device-interface/specs-go"
)

// DefaultSpecDirs are CDI's default spec directories; a spec in a later
// one wins over one of the same kind and device in an earlier one.
var DefaultSpecDirs = []string{"/etc/cdi", "/var/run/cdi"}

// Edits are what a set of CDI devices adds to a container, in CRI terms.
type Edits struct {
	Env     []*runtimeapi.KeyValue
	Devices []*runtimeapi.Device
	Mounts  []*runtimeapi.Mount
}

// Resolve reads the CDI specs in dirs and returns the edits of the devices
// named by ids, in order: each spec's own containerEdits once, before the
// edits of its first device.
func Resolve(dirs []string, ids []string) (Edits, error) {
	if len(ids) == 0 {
		return Edits{}, nil
	}
	specs, err := load(dirs)
	if err != nil {
		return Edits{}, err
	}
	return resolve(specs, ids)
}

// load reads every *.json, *.yaml and *.yml spec under dirs; a missing
// directory has no specs. A spec that does not parse is an error only if
// a device of its kind is asked for (resolve), as in CDI's registry.
func load(dirs []string) ([]loaded, error) {
	var out []loaded
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read CDI spec directory: %w", err)
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if e.IsDir() || (ext != ".json" && ext != ".yaml" && ext != ".yml") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("read CDI spec: %w", err)
			}
			out = append(out, parse(path, b))
		}
	}
	return out, nil
}

// loaded is one spec file: its spec, or why it could not be read.
type loaded struct {
	path string
	spec *specs.Spec
	err  error
}

func parse(path string, b []byte) loaded {
	if ext := filepath.Ext(path); ext != ".json" {
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			return loaded{path: path, err: err}
		}
		b = j
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return loaded{path: path, err: err}
	}
	return loaded{path: path, spec: &s}
}

// resolve is Resolve on specs already read: pure.
func resolve(loaded []loaded, ids []string) (Edits, error) {
	var edits Edits
	applied := map[*specs.Spec]bool{}
	for _, id := range ids {
		kind, name, ok := strings.Cut(id, "=")
		if !ok || !strings.Contains(kind, "/") || name == "" {
			return Edits{}, fmt.Errorf("CDI device %q: not a qualified name (vendor/class=name)", id)
		}
		spec, dev, err := find(loaded, kind, name)
		if err != nil {
			return Edits{}, fmt.Errorf("CDI device %q: %w", id, err)
		}
		if !applied[spec] {
			applied[spec] = true
			if err := edits.add(&spec.ContainerEdits); err != nil {
				return Edits{}, fmt.Errorf("CDI device %q: spec of kind %s: %w", id, kind, err)
			}
		}
		if err := edits.add(&dev.ContainerEdits); err != nil {
			return Edits{}, fmt.Errorf("CDI device %q: %w", id, err)
		}
	}
	return edits, nil
}

// find returns the device of that kind and name from the last spec that
// has it (later directories and files win).
func find(loaded []loaded, kind, name string) (*specs.Spec, *specs.Device, error) {
	var broken []string
	for _, l := range slices.Backward(loaded) {
		if l.err != nil {
			broken = append(broken, fmt.Sprintf("%s: %v", l.path, l.err))
			continue
		}
		if l.spec.Kind != kind {
			continue
		}
		for i := range l.spec.Devices {
			if l.spec.Devices[i].Name == name {
				return l.spec, &l.spec.Devices[i], nil
			}
		}
	}
	if len(broken) > 0 {
		return nil, nil, fmt.Errorf("unresolvable (unreadable specs: %s)", strings.Join(broken, "; "))
	}
	return nil, nil, errors.New("unresolvable: no CDI spec has it")
}

// add appends one containerEdits in CRI terms.
func (e *Edits) add(ce *specs.ContainerEdits) error {
	switch {
	case len(ce.Hooks) > 0:
		return errors.New("OCI hooks need a runtime with CDI support")
	case ce.IntelRdt != nil:
		return errors.New("Intel RDT settings need a runtime with CDI support")
	case len(ce.AdditionalGIDs) > 0:
		return errors.New("additional GIDs need a runtime with CDI support")
	case len(ce.NetDevices) > 0:
		return errors.New("network devices need a runtime with CDI support")
	}
	for _, kv := range ce.Env {
		k, v, _ := strings.Cut(kv, "=")
		e.Env = append(e.Env, &runtimeapi.KeyValue{Key: k, Value: []byte(v)})
	}
	for _, d := range ce.DeviceNodes {
		host := d.HostPath
		if host == "" {
			host = d.Path
		}
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		e.Devices = append(e.Devices, &runtimeapi.Device{ContainerPath: d.Path, HostPath: host, Permissions: perms})
	}
	for _, m := range ce.Mounts {
		if m.Type != "" && m.Type != "bind" {
			return fmt.Errorf("mount of type %q at %s needs a runtime with CDI support", m.Type, m.ContainerPath)
		}
		e.Mounts = append(e.Mounts, &runtimeapi.Mount{
			HostPath:      m.HostPath,
			ContainerPath: m.ContainerPath,
			Readonly:      slices.Contains(m.Options, "ro"),
		})
	}
	return nil
}

// RuntimeResolves tells whether the CRI runtime resolves the CDIDevices of
// a container config itself, from the name it reports (CRI Version) and its
// verbose status info: CRI-O always does; containerd when its CRI config
// says enableCDI (1.7 and later); containerd 1.6 has no such setting.
func RuntimeResolves(runtimeName string, info map[string]string) bool {
	if runtimeName == "cri-o" {
		return true
	}
	var cfg struct {
		EnableCDI bool `json:"enableCDI"`
	}
	raw, ok := info["config"]
	return ok && json.Unmarshal([]byte(raw), &cfg) == nil && cfg.EnableCDI
}
