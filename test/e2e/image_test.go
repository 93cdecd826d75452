package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// registryAddr is where hack/registry.sh serves; hack/containerd.sh lets
// containerd pull from it over plain HTTP.
const registryAddr = "127.0.0.1:5000"

// startRegistry runs the local registry for t and stops it when t ends. It
// skips t when the registry's tools are missing.
func startRegistry(t *testing.T, env *environment) {
	t.Helper()
	for _, tool := range []string{"docker-registry", "skopeo", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("image pull tests need %s (Debian package docker-registry / skopeo / curl): %v", tool, err)
		}
	}
	dir, err := os.MkdirTemp(env.tmp, "registry-")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(env.repo, "hack", "registry.sh")
	if out, err := exec.Command(script, "up", dir).CombinedOutput(); err != nil {
		// One registry serves the address; one started by someone else
		// (a developer's hack/registry.sh up) serves this test as well.
		if exec.Command(script, "status").Run() == nil {
			t.Logf("using the registry already serving %s (hack/registry.sh up: %s)", registryAddr, out)
			return
		}
		t.Fatalf("hack/registry.sh up: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(script, "down", dir).CombinedOutput(); err != nil {
			t.Errorf("hack/registry.sh down: %v\n%s", err, out)
		}
	})
}

func pushImage(t *testing.T, env *environment, archive, name string) {
	t.Helper()
	script := filepath.Join(env.repo, "hack", "registry.sh")
	if out, err := exec.Command(script, "push", archive, name).CombinedOutput(); err != nil {
		t.Fatalf("hack/registry.sh push %s %s: %v\n%s", archive, name, err, out)
	}
}

// waitingReasons records, in order, the distinct waiting reasons /pods shows
// for container "main" of pod name, until it has seen all of want.
func (b *berth) waitingReasons(name string, timeout time.Duration, want ...string) error {
	var seen []string
	_, err := b.poll(timeout, b.podCond(name, func(p *v1.Pod) (bool, string) {
		if cs := containerStatus(p, "main"); cs != nil && cs.State.Waiting != nil {
			r := cs.State.Waiting.Reason
			if len(seen) == 0 || seen[len(seen)-1] != r {
				seen = append(seen, r)
			}
		}
		// want must appear in seen in this order.
		i := 0
		for _, r := range seen {
			if i < len(want) && r == want[i] {
				i++
			}
		}
		return i == len(want), fmt.Sprintf("waiting reasons seen %v, want %v in order; %s", seen, want, describePod(p))
	}))
	return err
}

func TestImagePulls(t *testing.T) {
	env := requireSuite(t)
	startRegistry(t, env)
	pushImage(t, env, filepath.Join(env.repo, "_output", "images", "busybox.tar"), "e2e/busybox:pulled")

	b := startBerth(t)
	b.writePod(shellPod("pulled", "sleep 3600", withImage(registryAddr+"/e2e/busybox:pulled", v1.PullAlways)))
	b.writePod(shellPod("missing", "sleep 3600", withImage(registryAddr+"/e2e/missing:1", v1.PullAlways)))
	b.writePod(shellPod("never", "sleep 3600", withImage("berth.local/missing:1", v1.PullNever)))

	parallel(t, map[string]func() error{
		"pull policy Always, image in the registry": func() error {
			d, err := b.poll(30*time.Second, b.podCond("pulled", podRunning))
			t.Logf("pulled pod Running after %s", d.Round(time.Millisecond))
			if err != nil {
				return err
			}
			p, err := b.pod("pulled")
			if err != nil {
				return err
			}
			if cs := containerStatus(p, "main"); cs == nil || cs.ImageID == "" {
				return fmt.Errorf("no imageID in the container status: %s", describePod(p))
			}
			return nil
		},
		"image missing from the registry": func() error {
			if err := b.waitingReasons("missing", 30*time.Second, "ErrImagePull", "ImagePullBackOff"); err != nil {
				return err
			}
			cs, err := b.env.containers("missing")
			if err != nil {
				return err
			}
			if len(cs) > 0 {
				return fmt.Errorf("containers created without their image: %s", describeContainers(cs))
			}
			return nil
		},
		"pull policy Never, image missing": func() error {
			return b.waitingReasons("never", 15*time.Second, "ErrImageNeverPull")
		},
	})

	p, err := b.pod("missing")
	if err != nil || p == nil {
		t.Fatalf("missing pod gone from /pods: %v", err)
	}
	if p.Status.Phase != v1.PodPending {
		t.Errorf("pod with an unpullable image: phase %q, want Pending", p.Status.Phase)
	}
	if cs := containerStatus(p, "main"); cs != nil && cs.State.Waiting != nil && !slices.Contains([]string{"ErrImagePull", "ImagePullBackOff"}, cs.State.Waiting.Reason) {
		t.Errorf("unexpected waiting reason: %s", describePod(p))
	}
}
