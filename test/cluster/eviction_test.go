package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criclient "k8s.io/cri-client/pkg"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// withResources sets the main container's requests and limits.
func withResources(req, lim v1.ResourceList) podOption {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources = v1.ResourceRequirements{Requests: req, Limits: lim}
	}
}

func guaranteed() podOption {
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("50m"), v1.ResourceMemory: resource.MustParse("64Mi")}
	return withResources(rl, rl)
}

// evicted is a condition: the pod is Failed with reason Evicted.
func (env *environment) evicted(ns, name string, p **v1.Pod) func() (bool, string) {
	return func() (bool, string) {
		got, err := env.getPod(ns, name)
		if err != nil || got == nil {
			return false, fmt.Sprintf("get pod: %v (exists %v)", err, got != nil)
		}
		*p = got
		return got.Status.Phase == v1.PodFailed && got.Status.Reason == "Evicted",
			"want phase Failed, reason Evicted: " + describePod(got)
	}
}

// nodeCondition is a condition: the Node's condition typ has status want.
func (env *environment) nodeConditionIs(typ v1.NodeConditionType, want v1.ConditionStatus) func() (bool, string) {
	return func() (bool, string) {
		n, err := env.getNode()
		if err != nil {
			return false, err.Error()
		}
		c := nodeCondition(n, typ)
		if c == nil {
			return false, fmt.Sprintf("no %s condition", typ)
		}
		return c.Status == want, fmt.Sprintf("%s=%s (%s: %s), want %s", typ, c.Status, c.Reason, c.Message, want)
	}
}

// A node whose memory.available threshold cannot be met reports
// MemoryPressure, evicts its BestEffort pod before its Guaranteed one, with
// upstream's reason and message, and refuses new BestEffort pods.
func TestEvictionMemoryPressure(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	be := env.createPod(t, ns, sleeper("besteffort", onNode()))
	g := env.createPod(t, ns, sleeper("guaranteed", onNode(), guaranteed()))
	env.readyPod(t, ns, be.Name, 60*time.Second)
	env.readyPod(t, ns, g.Name, 60*time.Second)

	start := time.Now()
	env.restartBerthWith(t, "evictionHard:\n  memory.available: \"98%\"\n")
	env.eventually(t, 90*time.Second, env.evicted(ns, be.Name, &be))
	// At that moment the Guaranteed pod still runs: it ranks last (its
	// usage is under its request).
	got, err := env.getPod(ns, g.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1.PodRunning || got.Status.Reason != "" {
		t.Errorf("Guaranteed pod not running when the BestEffort one was evicted: %s", describePod(got))
	}
	t.Logf("BestEffort pod evicted %s after the restart: %s", since(start), be.Status.Message)
	if msg := be.Status.Message; !strings.HasPrefix(msg, "The node was low on resource: memory. Threshold quantity: ") ||
		!strings.Contains(msg, "Container main was using ") || !strings.Contains(msg, "request is 0, has larger consumption of memory. ") {
		t.Errorf("eviction message %q is not upstream's", msg)
	}
	var disruption bool
	for _, c := range be.Status.Conditions {
		disruption = disruption || (c.Type == v1.DisruptionTarget && c.Reason == v1.PodReasonTerminationByKubelet)
	}
	if !disruption {
		t.Errorf("no DisruptionTarget condition: %+v", be.Status.Conditions)
	}
	env.eventually(t, 10*time.Second, env.eventReasons(ns, be.Name, "Evicted"))
	env.eventually(t, 30*time.Second, env.nodeConditionIs(v1.NodeMemoryPressure, v1.ConditionTrue))
	env.checkThresholdAgainstSummary(t, be.Status.Message, 0.98)

	late := env.createPod(t, ns, sleeper("late-besteffort", onNode()))
	env.eventually(t, 30*time.Second, env.evicted(ns, late.Name, &late))
	// Upstream prefixes every admission refusal so.
	if want := "Pod was rejected: The node had condition: [MemoryPressure]. "; late.Status.Message != want {
		t.Errorf("refusal message %q, want %q", late.Status.Message, want)
	}
	if cs, err := env.podContainers(late.UID); err != nil || len(cs) > 0 {
		t.Errorf("refused pod has containers: %s %v", describeContainers(cs), err)
	}
}

// An emptyDir over its sizeLimit gets its pod evicted with upstream's
// message.
func TestEvictionEmptyDirSizeLimit(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	limit := resource.MustParse("1Mi")
	vol := v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: &limit}}}
	p := env.createPod(t, ns, shellPod("filler", "dd if=/dev/zero of=/data/f bs=1M count=4 && exec sleep 3600",
		onNode(), withVolume(vol, v1.VolumeMount{MountPath: "/data"})))
	start := time.Now()
	// The volume is walked when first seen and then every
	// volumeStatsAggPeriod (1 min).
	env.eventually(t, 150*time.Second, env.evicted(ns, p.Name, &p))
	t.Logf("pod evicted %s after its creation: %s", since(start), p.Status.Message)
	if want := `Usage of EmptyDir volume "data" exceeds the limit "1Mi". `; p.Status.Message != want {
		t.Errorf("message %q, want %q", p.Status.Message, want)
	}
	env.eventually(t, 10*time.Second, env.eventReasons(ns, p.Name, "Evicted"))
	env.eventually(t, 30*time.Second, env.noContainers(p.UID, true))
	// Counted as upstream counts it.
	crt, key := env.pkiPair("admin")
	families, err := parseMetrics(kubeletGet(t, env.kubeletPort(t), credentials{certFile: crt, keyFile: key}, "/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := sample(families, "kubelet_evictions", map[string]string{"eviction_signal": "emptydirfs.limit"}); !ok || n < 1 {
		t.Errorf("kubelet_evictions{eviction_signal=emptydirfs.limit} = %v (present %v), want at least 1", n, ok)
	}
}

// A container whose writable layer and logs exceed its ephemeral-storage
// limit gets its pod evicted with upstream's message. Two containers, so
// that the pod's total limit (their sum) is not what is exceeded.
func TestEvictionContainerEphemeralStorageLimit(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	small, big := resource.MustParse("1Mi"), resource.MustParse("100Mi")
	p := shellPod("layer-filler", "dd if=/dev/zero of=/tmp/f bs=1M count=4 && exec sleep 3600", onNode(),
		withResources(nil, v1.ResourceList{v1.ResourceEphemeralStorage: small}))
	idle := p.Spec.Containers[0]
	idle.Name, idle.Command = "idle", []string{"sleep", "3600"}
	idle.Resources = v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceEphemeralStorage: big}}
	p.Spec.Containers = append(p.Spec.Containers, idle)
	p = env.createPod(t, ns, p)
	start := time.Now()
	// The runtime measures writable layers periodically (containerd: every
	// 10 s), then the next housekeeping round sees it.
	env.eventually(t, 90*time.Second, env.evicted(ns, p.Name, &p))
	t.Logf("pod evicted %s after its creation: %s", since(start), p.Status.Message)
	if want := `Container main exceeded its local ephemeral storage limit "1Mi". `; p.Status.Message != want {
		t.Errorf("message %q, want %q", p.Status.Message, want)
	}
}

// A disk threshold first has unused images removed (the node-level
// reclaim), and only then, the threshold still met, evicts a pod. The
// threshold (imagefs.available 99%) cannot be met on this machine's disk,
// so that both steps show; images in use and the sandbox image stay.
func TestEvictionDiskPressureImageGCFirst(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	is, err := criclient.NewRemoteImageServiceBuilder().WithEndpoint(env.endpoint).
		WithConnectionTimeout(10 * time.Second).WithTracerProvider(nil).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	victim := "berth.local/gc-victim:1"
	env.importImage(t, victim)
	victimID := imageID(t, is, victim)
	p := env.createPod(t, ns, sleeper("disk-user", onNode()))
	env.readyPod(t, ns, p.Name, 60*time.Second)

	// Unused images all go, the suite's own among them once no pod uses
	// them: import them again after berth is back on the suite's settings
	// (cleanups run last first).
	t.Cleanup(func() {
		sock := strings.TrimPrefix(env.endpoint, "unix://")
		if out, err := exec.Command(filepath.Join(env.repo, "hack/images.sh"), "import", sock).CombinedOutput(); err != nil {
			t.Errorf("import the suite's images again: %v\n%s", err, out)
		}
	})
	off := env.berth.logSize()
	env.restartBerthWith(t, "evictionHard:\n  imagefs.available: \"99%\"\nimageMinimumGCAge: 1ns\n")
	env.eventually(t, 90*time.Second, env.evicted(ns, p.Name, &p))
	if msg := p.Status.Message; !strings.HasPrefix(msg, "The node was low on resource: ephemeral-storage. Threshold quantity: ") {
		t.Errorf("eviction message %q is not upstream's", msg)
	}
	env.eventually(t, 30*time.Second, env.nodeConditionIs(v1.NodeDiskPressure, v1.ConditionTrue))
	if st, err := is.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: victim}, false); err != nil || st.GetImage() != nil {
		t.Errorf("unused image %s still there (%v)", victim, err)
	}
	if st, err := is.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: "registry.k8s.io/pause:3.10"}, false); err != nil || st.GetImage() == nil {
		t.Errorf("sandbox image removed (%v)", err)
	}
	// The order, from berth's log: the image went before the pod.
	log := env.berth.logTail(off, 100000)
	removed := strings.Index(log, `"Removing image to free bytes" logger="imagegc"`)
	if removed < 0 {
		removed = strings.Index(log, `"Removing image to free bytes"`)
	}
	evicting := strings.Index(log, `"Evicting pod"`)
	if removed < 0 || evicting < 0 || removed > evicting || !strings.Contains(log, victimID) {
		t.Errorf("want %s removed before any pod is evicted; removal at %d, eviction at %d in berth's log", victimID, removed, evicting)
	}
}

// importImage builds a small image of its own (one file) named name and
// imports it into the suite's containerd.
func (env *environment) importImage(t *testing.T, name string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "payload")
	if err := os.WriteFile(file, []byte(strings.Repeat("gc victim\n", 10000)), 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "image.tar")
	mkimage := filepath.Join(env.repo, "_output/images/bin/mkimage")
	if out, err := exec.Command(mkimage, "-o", archive, "-name", name, "-file", file+":/payload:0644").CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, out)
	}
	sock := strings.TrimPrefix(env.endpoint, "unix://")
	if out, err := exec.Command("ctr", "--address", sock, "-n", "k8s.io", "images", "import", archive).CombinedOutput(); err != nil {
		t.Fatalf("ctr import: %v\n%s", err, out)
	}
}

func imageID(t *testing.T, is interface {
	ImageStatus(context.Context, *runtimeapi.ImageSpec, bool) (*runtimeapi.ImageStatusResponse, error)
}, name string) string {
	t.Helper()
	st, err := is.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: name}, false)
	if err != nil || st.GetImage() == nil {
		t.Fatalf("image %s not found after import: %v", name, err)
	}
	return st.GetImage().GetId()
}

// checkThresholdAgainstSummary checks that the eviction manager's memory
// capacity is the Summary API's: the threshold quantity in the eviction
// message is fraction of the Summary's node memory (available + working
// set), computed as upstream does (float32 percentage).
func (env *environment) checkThresholdAgainstSummary(t *testing.T, msg string, fraction float32) {
	t.Helper()
	port := env.kubeletPort(t)
	crt, key := env.pkiPair("admin")
	var summary statsapi.Summary
	if err := json.Unmarshal(kubeletGet(t, port, credentials{certFile: crt, keyFile: key}, "/stats/summary"), &summary); err != nil {
		t.Fatalf("/stats/summary: %v", err)
	}
	m := summary.Node.Memory
	if m == nil || m.AvailableBytes == nil || m.WorkingSetBytes == nil {
		t.Fatalf("summary has no node memory: %+v", m)
	}
	capacity := int64(*m.AvailableBytes + *m.WorkingSetBytes)
	want := resource.NewQuantity(int64(float64(capacity)*float64(fraction)), resource.BinarySI).String()
	if !strings.Contains(msg, "Threshold quantity: "+want+", ") {
		t.Errorf("eviction message %q: want threshold %s, %v of the Summary's memory capacity %d (available %d + working set %d)",
			msg, want, fraction, capacity, *m.AvailableBytes, *m.WorkingSetBytes)
	}
}
