package file

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/berth-dev/berth/internal/source"
)

// maxManifestSize is upstream's limit on a static pod file.
const maxManifestSize = 10 << 20

// parser decodes static pod manifests. It holds the strict JSON decoder and
// the scheme it needs, built once per Source.
type parser struct {
	decoder runtime.Decoder
}

func newParser() *parser {
	scheme := runtime.NewScheme()
	// AddToScheme only fails on conflicting registrations, impossible in a
	// fresh scheme.
	_ = v1.AddToScheme(scheme)
	return &parser{
		decoder: kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
			kjson.SerializerOptions{Strict: true}),
	}
}

// ParseManifest reads one static pod manifest (YAML or JSON) as berth runs
// it: decoded strictly, defaulted, turned into a static pod of nodeName (see
// parser.parse), and validated. path is part of the pod's UID, so the same
// content in two files makes two pods. The result has no
// AnnotationConfigSeen: that is set by the Source when it first sees the pod.
func ParseManifest(data []byte, path, nodeName string) (*v1.Pod, error) {
	return newParser().parse(data, path, nodeName)
}

func (p *parser) parse(data []byte, path, nodeName string) (*v1.Pod, error) {
	doc, tm, err := p.document(data)
	if err != nil {
		return nil, err
	}
	if tm.APIVersion != "v1" || tm.Kind != "Pod" {
		return nil, fmt.Errorf("apiVersion %q, kind %q: a static pod manifest must be apiVersion v1, kind Pod", tm.APIVersion, tm.Kind)
	}
	pod := &v1.Pod{}
	if err := p.decode(doc, "Pod", pod); err != nil {
		return nil, err
	}
	return pod, finish(pod, origin{source: source.SourceFile, location: path}, nodeName)
}

// ParseURLManifest reads what a static pod URL (staticPodURL) serves: one
// Pod or a PodList, each pod made static as ParseManifest does, with a
// UID hashed from its content and the URL. Any pod that cannot be used
// fails the whole document, as upstream's http source.
func ParseURLManifest(data []byte, url, nodeName string) ([]*v1.Pod, error) {
	p := newParser()
	doc, tm, err := p.document(data)
	if err != nil {
		return nil, err
	}
	o := origin{source: source.SourceHTTP, location: url}
	switch {
	case tm.APIVersion == "v1" && tm.Kind == "Pod":
		pod := &v1.Pod{}
		if err := p.decode(doc, "Pod", pod); err != nil {
			return nil, err
		}
		return []*v1.Pod{pod}, finish(pod, o, nodeName)
	case tm.APIVersion == "v1" && tm.Kind == "PodList":
		list := &v1.PodList{}
		if err := p.decode(doc, "PodList", list); err != nil {
			return nil, err
		}
		pods := make([]*v1.Pod, 0, len(list.Items))
		names := map[string]bool{}
		for i := range list.Items {
			pod := &list.Items[i]
			if err := finish(pod, o, nodeName); err != nil {
				return nil, fmt.Errorf("items[%d]: %w", i, err)
			}
			key := pod.Namespace + "/" + pod.Name
			if names[key] {
				return nil, fmt.Errorf("items[%d]: pod %s is listed twice", i, key)
			}
			names[key] = true
			pods = append(pods, pod)
		}
		return pods, nil
	}
	return nil, fmt.Errorf("apiVersion %q, kind %q: a static pod URL must serve apiVersion v1, kind Pod or PodList", tm.APIVersion, tm.Kind)
}

// document converts a manifest to JSON and reads its type.
func (p *parser) document(data []byte) ([]byte, metav1.TypeMeta, error) {
	var tm metav1.TypeMeta
	if len(data) > maxManifestSize {
		return nil, tm, fmt.Errorf("manifest is larger than %d bytes", maxManifestSize)
	}
	// Strict: a key given twice is an error, not "the last one wins".
	doc, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, tm, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	if err := json.Unmarshal(doc, &tm); err != nil || string(doc) == "null" {
		return nil, tm, errors.New("not a single object: a static pod manifest holds one Pod")
	}
	return doc, tm, nil
}

// decode decodes doc strictly into into, a kind (Pod or PodList).
func (p *parser) decode(doc []byte, kind string, into runtime.Object) error {
	obj, _, err := p.decoder.Decode(doc, nil, into)
	if err != nil {
		// Strict decoding names the unknown or duplicate field, e.g.
		// `unknown field "spec.containers[0].imagee"`.
		return fmt.Errorf("decode %s: %w", kind, err)
	}
	if obj != into {
		return fmt.Errorf("decode %s: got %T", kind, obj)
	}
	return nil
}

// finish checks a decoded pod's name, defaults it, makes it static and
// validates it.
func finish(pod *v1.Pod, o origin, nodeName string) error {
	if pod.Name == "" {
		return errors.New("metadata.name: Required value: a static pod needs a name")
	}
	if pod.GenerateName != "" {
		return errors.New("metadata.generateName: Forbidden: static pods are named by metadata.name only")
	}
	source.SetPodDefaults(pod)
	makeStatic(pod, o, nodeName)
	if err := validatePod(pod); err != nil {
		return err
	}
	return checkNoAPIReferences(pod)
}

// origin is where a static pod was read: a file (source.SourceFile, its
// path) or a URL (source.SourceHTTP).
type origin struct {
	source, location string
}

// makeStatic turns a defaulted manifest into the pod berth runs, as upstream's
// static pod source does:
//   - the UID, unless the manifest sets one, is a hash of the defaulted pod,
//     the node name and the file's path: it changes with any change that
//     matters and a field written out at its default value changes nothing;
//   - the name gets "-<node name>" appended, so that static pods of
//     different nodes do not clash as mirror pods;
//   - namespace "default", spec.nodeName, the hash and source annotations,
//     and, for a file's pod, a toleration of every NoExecute taint, so node
//     problems never evict it (upstream gives a URL's pods none);
//   - the status is the kubelet's to write: it starts Pending;
//   - no kind and apiVersion, as a pod read from the API.
func makeStatic(pod *v1.Pod, o origin, nodeName string) {
	if pod.UID == "" {
		pod.UID = contentUID(pod, o, nodeName)
	}
	pod.Name = pod.Name + "-" + strings.ToLower(nodeName)
	if pod.Namespace == "" {
		pod.Namespace = metav1.NamespaceDefault
	}
	pod.Spec.NodeName = nodeName
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[source.AnnotationConfigHash] = string(pod.UID)
	pod.Annotations[source.AnnotationConfigSource] = o.source
	if o.source == source.SourceFile {
		tolerateNoExecute(pod)
	}
	pod.Status = v1.PodStatus{Phase: v1.PodPending}
	// Upstream's pod went through the internal type and has none; the UID
	// above was hashed with it, so UIDs stay what they were.
	pod.TypeMeta = metav1.TypeMeta{}
}

// contentUID hashes the pod as written (after defaults, before makeStatic
// changes it), then the node name and file path (or the URL alone), with
// FNV-128a, like upstream. Upstream hashes its internal Go representation, berth the JSON
// encoding (field order fixed by the API types, unset fields left out), so
// UIDs differ from upstream's; they stay the same across berth versions as
// long as the defaults do, else an upgrade restarts the static pods.
func contentUID(pod *v1.Pod, o origin, nodeName string) types.UID {
	h := fnv.New128a()
	b, err := json.Marshal(pod)
	if err != nil {
		// A decoded v1.Pod always encodes; keep going with the rest of the
		// input rather than fail.
		b = nil
	}
	_, _ = h.Write(b)
	if o.source == source.SourceFile {
		fmt.Fprintf(h, "host:%s", nodeName)
		fmt.Fprintf(h, "file:%s", o.location)
	} else {
		fmt.Fprintf(h, "url:%s", o.location)
	}
	return types.UID(hex.EncodeToString(h.Sum(nil)))
}

// tolerateNoExecute adds the toleration {operator: Exists, effect: NoExecute},
// replacing any toleration with the same key, operator, value and effect (as
// upstream does, which drops a tolerationSeconds given there).
func tolerateNoExecute(pod *v1.Pod) {
	all := v1.Toleration{Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute}
	var out []v1.Toleration
	replaced := false
	for _, t := range pod.Spec.Tolerations {
		if t.Key == all.Key && t.Operator == all.Operator && t.Value == all.Value && t.Effect == all.Effect {
			if !replaced {
				out = append(out, all)
				replaced = true
			}
			continue
		}
		out = append(out, t)
	}
	if !replaced {
		out = append(out, all)
	}
	pod.Spec.Tolerations = out
}
