package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// addEphemeral adds ec to the pod through the ephemeralcontainers
// subresource with a strategic merge patch, as `kubectl debug` does.
func (env *environment) addEphemeral(t *testing.T, p *v1.Pod, ec v1.EphemeralContainer) {
	t.Helper()
	before, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	with := p.DeepCopy()
	with.Spec.EphemeralContainers = append(with.Spec.EphemeralContainers, ec)
	after, err := json.Marshal(with)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(before, after, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := apiContext()
	defer cancel()
	if _, err := env.kube.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch,
		metav1.PatchOptions{}, "ephemeralcontainers"); err != nil {
		t.Fatalf("add ephemeral container %s to %s: %v", ec.Name, p.Name, err)
	}
}

func ephemeralStatus(p *v1.Pod, name string) *v1.ContainerStatus {
	for i := range p.Status.EphemeralContainerStatuses {
		if p.Status.EphemeralContainerStatuses[i].Name == name {
			return &p.Status.EphemeralContainerStatuses[i]
		}
	}
	return nil
}

// ephemeralRunning waits until ephemeral container name runs.
func (env *environment) ephemeralRunning(t *testing.T, ns, pod, name string) (*v1.Pod, time.Duration) {
	t.Helper()
	return env.waitPod(t, ns, pod, 60*time.Second, func(p *v1.Pod) (bool, string) {
		cs := ephemeralStatus(p, name)
		return cs != nil && cs.State.Running != nil, fmt.Sprintf("want ephemeral container %s running; ephemeral statuses %+v", name, p.Status.EphemeralContainerStatuses)
	})
}

// Ephemeral containers, as `kubectl debug` uses them: added to a running
// pod through the ephemeralcontainers subresource, they start beside its
// containers (nothing else restarts), share the target container's
// process namespace, are reported in ephemeralContainerStatuses, and
// exec, attach and logs reach them through the apiserver and berth's own
// API; one that ends is not restarted.
func TestEphemeralContainers(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.createPod(t, ns, sleeper("target", onNode(), withGrace(1)))
	pods, _ := env.waitReady(t, ns, "target", 1, 30*time.Second)
	target := &pods[0]
	mainID := containerStatus(target, "main").ContainerID

	// A debugging shell in main's process namespace, as
	// `kubectl debug -it --target=main` makes one.
	env.addEphemeral(t, target, v1.EphemeralContainer{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{
			Name: "debugger", Image: busybox, ImagePullPolicy: v1.PullNever,
			Command: []string{"sh"}, Stdin: true, TTY: true, TerminationMessagePolicy: v1.TerminationMessageReadFile,
		},
		TargetContainerName: "main",
	})
	p, took := env.ephemeralRunning(t, ns, "target", "debugger")
	t.Logf("ephemeral container running %s after it was added", took.Round(time.Millisecond))
	if p.Generation != 2 {
		t.Errorf("pod generation %d after adding an ephemeral container, want 2", p.Generation)
	}
	cs := ephemeralStatus(p, "debugger")
	if cs.Ready || cs.Started != nil || !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.Image != busybox || cs.RestartCount != 0 {
		t.Errorf("ephemeral status %+v; want running, not ready, started unset, with its container ID and image", cs)
	}
	main := containerStatus(p, "main")
	if main.ContainerID != mainID || main.RestartCount != 0 || main.State.Running == nil || !podReady(p) {
		t.Errorf("after adding an ephemeral container: %s; want main %s still running, the pod Ready", describePod(p), mainID)
	}
	env.waitPod(t, ns, "target", 10*time.Second, func(p *v1.Pod) (bool, string) {
		return p.Status.ObservedGeneration == 2, fmt.Sprintf("observedGeneration %d, want 2", p.Status.ObservedGeneration)
	})

	routes, port := env.streamRoutes(t)
	for i, route := range routes {
		t.Run("exec/"+route.name, func(t *testing.T) {
			u := env.apiExecURL(ns, "target", "debugger", false, false, "ps", "-o", "args")
			if route.name == "kubelet" {
				u = kubeletExecURL(port, ns, "target", "debugger", false, false, "ps", "-o", "args")
			}
			ex, err := executor(route.cfg, websocketProtocol, u)
			if err != nil {
				t.Fatal(err)
			}
			r := stream(ex, nil, false, 20*time.Second)
			// main's process is visible: one process namespace.
			if r.err != nil || !strings.Contains(r.stdout, "sleep 3600") {
				t.Errorf("ps in the ephemeral container: stdout %q stderr %q err %v; want main's sleep 3600 listed", r.stdout, r.stderr, r.err)
			}
		})
		t.Run("attach/"+route.name, func(t *testing.T) {
			u := env.apiAttachURL(ns, "target", "debugger", true)
			if route.name == "kubelet" {
				q := url.Values{"input": {"1"}, "output": {"1"}, "tty": {"1"}}
				u = &url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", port), Path: fmt.Sprintf("/attach/%s/target/debugger", ns), RawQuery: q.Encode()}
			}
			ex, err := executor(route.cfg, spdyProtocol, u)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("debugged-%d", 70+i)
			if out, _, err := interact(ex, true, fmt.Sprintf("echo debugged-$((70+%d))\n", i), want, "", 20*time.Second); err != nil {
				t.Errorf("attach to the ephemeral shell: %v; output %q", err, out)
			}
		})
	}

	// A second one, added by updating the subresource, that logs.
	p, err := env.getPod(ns, "target")
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, v1.EphemeralContainer{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{
			Name: "poller", Image: busybox, ImagePullPolicy: v1.PullNever, TerminationMessagePolicy: v1.TerminationMessageReadFile,
			Command: []string{"sh", "-c", "while true; do echo polo; sleep 2; done"},
		},
	})
	ctx, cancel := apiContext()
	_, err = env.kube.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, "target", p, metav1.UpdateOptions{})
	cancel()
	if err != nil {
		t.Fatalf("update ephemeral containers: %v", err)
	}
	env.ephemeralRunning(t, ns, "target", "poller")
	env.eventually(t, 20*time.Second, func() (bool, string) {
		out, err := env.podLogs(ns, "target", &v1.PodLogOptions{Container: "poller"})
		return err == nil && strings.Contains(out, "polo"), fmt.Sprintf("logs of poller: %q, %v", out, err)
	})
	crt, key := env.pkiPair("admin")
	body := kubeletGet(t, port, credentials{certFile: crt, keyFile: key}, fmt.Sprintf("/containerLogs/%s/target/poller", ns))
	if !strings.Contains(string(body), "polo") {
		t.Errorf("berth's /containerLogs for the ephemeral container: %q", truncate(body, 200))
	}

	// kubectl debug itself: a shell attached over stdin, which ends.
	// kubectl attach reports no exit code; the container's status does.
	out, err := env.kubectlInteractive(90*time.Second, "ps -o args\n", "sleep 3600", "exit 3\n",
		"debug", "-i", "-n", ns, "target", "--image="+busybox, "--image-pull-policy=Never",
		"--target=main", "--container=kdebug", "--", "sh")
	if err != nil {
		t.Errorf("kubectl debug -i, then ps: %v\noutput %q", err, out)
	}
	p, _ = env.waitPod(t, ns, "target", 20*time.Second, func(p *v1.Pod) (bool, string) {
		cs := ephemeralStatus(p, "kdebug")
		return cs != nil && cs.State.Terminated != nil, "want kdebug terminated"
	})
	ended := ephemeralStatus(p, "kdebug")
	if ended.State.Terminated.ExitCode != 3 {
		t.Errorf("kdebug: %+v, want terminated with exit 3", ended.State.Terminated)
	}
	// Ended for good: the pod's restartPolicy Always does not bring it back.
	time.Sleep(5 * time.Second)
	p, err = env.getPod(ns, "target")
	if err != nil {
		t.Fatal(err)
	}
	if cs := ephemeralStatus(p, "kdebug"); cs == nil || cs.State.Terminated == nil || cs.RestartCount != 0 || cs.ContainerID != ended.ContainerID {
		t.Errorf("kdebug later: %+v; want the same container, terminated, never restarted", cs)
	}
	if main := containerStatus(p, "main"); main.ContainerID != mainID || main.RestartCount != 0 || !podReady(p) {
		t.Errorf("at the end: %s; want main %s never restarted, the pod Ready", describePod(p), mainID)
	}

	// Events name the ephemeral container's field.
	events, err := env.events(ns, "target")
	if err != nil {
		t.Fatal(err)
	}
	started := false
	for _, e := range events {
		if e.Reason == "Started" && e.InvolvedObject.FieldPath == "spec.ephemeralContainers{debugger}" {
			started = true
		}
	}
	if !started {
		var all []string
		for _, e := range events {
			all = append(all, describeEvent(e))
		}
		t.Errorf("no Started event for spec.ephemeralContainers{debugger}; events:\n%s", strings.Join(all, "\n"))
	}
}

// kubectlInteractive runs kubectl with a live stdin: it types input, waits
// until the output holds want, types then and closes stdin (the runtime
// ends an attach whose stdin closes, so stdin stays open until then), and
// waits for kubectl to end.
func (env *environment) kubectlInteractive(timeout time.Duration, input, want, then string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	bin := filepath.Join(env.repo, "_output", "cluster", "bin", "kubectl")
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", filepath.Join(env.stateDir, "admin.kubeconfig")}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	out := newWatchWriter(want)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	_, _ = io.WriteString(stdin, input)
	select {
	case <-out.found:
	case err := <-done:
		return out.String(), fmt.Errorf("kubectl ended (%v) before %q came", err, want)
	case <-ctx.Done():
		return out.String(), fmt.Errorf("no %q within %s", want, timeout)
	}
	_, _ = io.WriteString(stdin, then)
	stdin.Close()
	if err := <-done; err != nil {
		return out.String(), fmt.Errorf("kubectl: %w", err)
	}
	return out.String(), nil
}
