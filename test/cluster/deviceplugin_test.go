package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/berth-dev/berth/internal/devicemanager/checkpoint"
)

const sampleDeviceResource = "example.com/resource"

// TestSampleDevicePlugin registers upstream's sample device plugin
// (k8s.io/kubernetes test/images/sample-device-plugin: two devices Dev-1
// and Dev-2, each a file /tmp/Dev-N mounted into the container) with berth:
// the Node gets example.com/resource: 2; a scheduled pod asking for one
// runs with the plugin's mount; a pod bound to the node asking for two
// while one is taken is refused with upstream's UnexpectedAdmissionError;
// once the first pod is gone its device is free again and a pod asking for
// two runs with both; across a berth restart that pod keeps them.
func TestSampleDevicePlugin(t *testing.T) {
	env := requireSuite(t)
	env.startSampleDevicePlugin(t)

	start := time.Now()
	env.eventually(t, 30*time.Second, func() (bool, string) {
		node, err := env.getNode()
		if err != nil {
			return false, err.Error()
		}
		c, a := node.Status.Capacity[sampleDeviceResource], node.Status.Allocatable[sampleDeviceResource]
		return c.Value() == 2 && a.Value() == 2, fmt.Sprintf("want %s capacity and allocatable 2, have %s and %s", sampleDeviceResource, c.String(), a.String())
	})
	t.Logf("node advertises %s: 2 after %s", sampleDeviceResource, since(start))

	ns := env.namespace(t)
	one := env.createPod(t, ns, shellPod("one-device", "ls /tmp/Dev-*; exec sleep 3600", withDevices(1)))
	env.eventually(t, 60*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, one.Name)
		if err != nil || p == nil {
			return false, fmt.Sprintf("get pod: %v", err)
		}
		one = p
		return p.Status.Phase == v1.PodRunning, "want Running: " + describePod(p)
	})
	logs, err := env.podLogs(ns, one.Name, &v1.PodLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(logs); len(got) != 1 || (got[0] != "/tmp/Dev-1" && got[0] != "/tmp/Dev-2") {
		t.Fatalf("pod with one device sees %q, want one of the plugin's mounts /tmp/Dev-1, /tmp/Dev-2", logs)
	}
	t.Logf("pod with one device runs with %s", strings.TrimSpace(logs))

	// Bound to the node directly (no scheduler to keep it away): two
	// devices while one is taken.
	two := env.createPod(t, ns, shellPod("two-devices", "ls /tmp/Dev-*; exec sleep 3600", withDevices(2), onNode()))
	// Upstream's message; the status says it as upstream's rejectPod does.
	wantMsg := "Pod was rejected: Allocate failed due to requested number of devices unavailable for example.com/resource. Requested: 2, Available: 1, which is unexpected"
	env.eventually(t, 30*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, two.Name)
		if err != nil || p == nil {
			return false, fmt.Sprintf("get pod: %v", err)
		}
		two = p
		return p.Status.Phase == v1.PodFailed && p.Status.Reason == "UnexpectedAdmissionError" && p.Status.Message == wantMsg,
			fmt.Sprintf("want Failed, UnexpectedAdmissionError %q: %s", wantMsg, describePod(p))
	})

	// The first pod goes: its device is freed, two fit.
	env.deletePod(t, one)
	env.eventually(t, 30*time.Second, env.podGone(ns, one.Name))
	both := env.createPod(t, ns, shellPod("both-devices", "ls /tmp/Dev-*; exec sleep 3600", withDevices(2), onNode()))
	env.eventually(t, 30*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, both.Name)
		if err != nil || p == nil {
			return false, fmt.Sprintf("get pod: %v", err)
		}
		return p.Status.Phase == v1.PodRunning, "want Running: " + describePod(p)
	})
	if logs, err := env.podLogs(ns, both.Name, &v1.PodLogOptions{}); err != nil || strings.Join(lines(logs), " ") != "/tmp/Dev-1 /tmp/Dev-2" {
		t.Errorf("pod with both devices sees %q (%v), want /tmp/Dev-1 /tmp/Dev-2", logs, err)
	}

	// berth restarts: the allocation is in upstream's checkpoint, the
	// plugin registers again (it watches kubelet.sock), the pod keeps its
	// container and its devices: a new pod asking for one is refused.
	env.devicesCheckpointed(t, both, "Dev-1", "Dev-2")
	offset := env.berth.logSize()
	if err := env.berth.stop(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	if err := env.berth.start(); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, 30*time.Second, func() (bool, string) {
		return strings.Contains(env.berth.logTail(offset, 1<<20), "Device plugin connected"), "the sample device plugin has not registered again since the restart"
	})
	t.Logf("sample device plugin registered again %s after berth restarted", since(restarted))
	late := env.createPod(t, ns, shellPod("late", "exec sleep 3600", withDevices(1), onNode()))
	env.eventually(t, 30*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, late.Name)
		if err != nil || p == nil {
			return false, fmt.Sprintf("get pod: %v", err)
		}
		return p.Status.Phase == v1.PodFailed && p.Status.Reason == "UnexpectedAdmissionError" && strings.Contains(p.Status.Message, "Requested: 1, Available: 0"),
			"want Failed, UnexpectedAdmissionError, none available: " + describePod(p)
	})
	p, err := env.getPod(ns, both.Name)
	if err != nil || p == nil || p.Status.Phase != v1.PodRunning || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("pod with both devices after the restart: %v %s", err, describePod(p))
	}
	env.deletePod(t, both)
}

// devicesCheckpointed checks berth's device checkpoint (upstream's format,
// read with berth's reader of it) for pod's devices.
func (env *environment) devicesCheckpointed(t *testing.T, pod *v1.Pod, want ...string) {
	t.Helper()
	cp, err := checkpoint.Read(filepath.Join(env.nodeDir, "root", "device-plugins"))
	if err != nil || cp == nil {
		t.Fatalf("device checkpoint: %v (exists %v)", err, cp != nil)
	}
	var got []string
	for _, e := range cp.Entries() {
		if e.PodUID == string(pod.UID) && e.ResourceName == sampleDeviceResource {
			for _, ids := range e.DeviceIDs {
				got = append(got, ids...)
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("checkpointed devices of %s = %v, want %v", pod.Name, got, want)
	}
}

func withDevices(n int64) podOption {
	return func(p *v1.Pod) {
		q := *resource.NewQuantity(n, resource.DecimalSI)
		p.Spec.Containers[0].Resources.Limits = v1.ResourceList{sampleDeviceResource: q}
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{sampleDeviceResource: q}
	}
}

// startSampleDevicePlugin runs the sample device plugin until the test
// ends. It knows only /var/lib/kubelet/device-plugins, so it runs in a
// mount namespace of its own where that is berth's <root>/device-plugins
// (on a tmpfs over /var/lib: nothing is created on the host).
func (env *environment) startSampleDevicePlugin(t *testing.T) {
	t.Helper()
	bin := filepath.Join(env.repo, "_output", "cluster", "bin", "sample-device-plugin")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("sample device plugin not built (hack/cluster.sh build): %v", err)
	}
	dir := filepath.Join(env.nodeDir, "root", "device-plugins")
	logPath := filepath.Join(env.stateDir, "sample-device-plugin.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	script := `set -e
mount -t tmpfs none /var/lib
mkdir -p /var/lib/kubelet/device-plugins
mount --bind "$1" /var/lib/kubelet/device-plugins
exec "$2"`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", dir, bin)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sample device plugin: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("sample device plugin log:\n%s", b)
			}
		}
	})
}
