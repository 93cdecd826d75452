package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// mirrorAnnotation marks a mirror pod; its value is the static pod's hash.
const mirrorAnnotation = "kubernetes.io/config.mirror"

// writeManifest writes the static pod p into berth's manifest directory
// atomically, and removes it when t ends unless the test did.
func (env *environment) writeManifest(t *testing.T, p *v1.Pod) string {
	t.Helper()
	p.APIVersion, p.Kind = "v1", "Pod"
	data, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(env.manifestDir(), p.Name+".yaml")
	tmp := filepath.Join(env.nodeDir, "."+p.Name+".yaml.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove manifest: %v", err)
		}
	})
	return path
}

// mirrorRunning is a condition: the mirror pod ns/name exists, is not being
// deleted, has a UID other than old, carries the mirror annotation and is
// Running.
func (env *environment) mirrorRunning(ns, name string, old types.UID, got **v1.Pod) func() (bool, string) {
	return func() (bool, string) {
		p, err := env.getPod(ns, name)
		if err != nil {
			return false, err.Error()
		}
		if p == nil {
			return false, fmt.Sprintf("no mirror pod %s/%s", ns, name)
		}
		_, mirror := p.Annotations[mirrorAnnotation]
		*got = p
		ok := mirror && p.UID != old && p.DeletionTimestamp == nil && p.Status.Phase == v1.PodRunning
		return ok, fmt.Sprintf("mirror pod annotations %v: %s", p.Annotations, describePod(p))
	}
}

func TestStaticPodMirror(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	static := sleeper("static-web")
	static.Namespace = ns
	mirrorName := "static-web-" + nodeName

	start := time.Now()
	path := env.writeManifest(t, static)
	var mirror *v1.Pod
	env.eventually(t, 30*time.Second, env.mirrorRunning(ns, mirrorName, "", &mirror))
	t.Logf("manifest written -> mirror pod Running: %s", since(start))
	if mirror.Spec.NodeName != nodeName {
		t.Errorf("mirror pod on node %q, want %s", mirror.Spec.NodeName, nodeName)
	}
	running := env.runningContainers(t, ns, mirrorName)

	// A deleted mirror pod comes back; the static pod itself runs on.
	start = time.Now()
	ctx, cancel := apiContext()
	err := env.kube.CoreV1().Pods(ns).Delete(ctx, mirrorName, metaDeleteDefault())
	cancel()
	if err != nil {
		t.Fatalf("delete mirror pod: %v", err)
	}
	old := mirror.UID
	env.eventually(t, 30*time.Second, env.mirrorRunning(ns, mirrorName, old, &mirror))
	t.Logf("mirror pod deleted -> recreated (uid %s -> %s): %s", old, mirror.UID, since(start))
	cs, err := env.listContainers(map[string]string{labelPodNamespace: ns, labelPodName: mirrorName})
	if err != nil {
		t.Fatal(err)
	}
	if r := runningOnly(cs); len(r) != 1 || r[0].Id != running[0] {
		t.Errorf("deleting the mirror pod touched the static pod: had container %s running, now %s", shortID(running[0]), describeContainers(cs))
	}

	// Without its manifest the static pod stops and its mirror goes.
	start = time.Now()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	took := env.eventually(t, 30*time.Second, func() (bool, string) {
		gone, msg := env.podGone(ns, mirrorName)()
		cs, err := env.listContainers(map[string]string{labelPodNamespace: ns, labelPodName: mirrorName})
		if err != nil {
			return false, err.Error()
		}
		return gone && len(cs) == 0, fmt.Sprintf("%s; runtime: %s", msg, describeContainers(cs))
	})
	t.Logf("manifest removed -> mirror pod and containers gone: %s", took.Round(time.Millisecond))
}
