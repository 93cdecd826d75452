package cluster

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// An HTTP readiness probe on busybox httpd flips the pod Ready only once
// the server, started 5 s into the container's life, answers.
func TestProbeHTTPReadiness(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	script := `sleep 5; echo ok > /var/www/index.html; exec httpd -f -p 8080 -h /var/www`
	env.createPod(t, ns, shellPod("web", script, withGrace(2), withMain(func(c *v1.Container) {
		c.Ports = []v1.ContainerPort{{Name: "http", ContainerPort: 8080}}
		c.ReadinessProbe = fastProbe(v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/index.html", Port: intstr.FromString("http")}})
	})))

	// Running but not Ready first, then Ready.
	sawUnready := false
	p, took := env.waitPod(t, ns, "web", 30*time.Second, func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		running := cs != nil && cs.State.Running != nil
		if running && !podReady(p) {
			sawUnready = true
			if cs.Ready {
				return false, "container ready while the pod is not"
			}
		}
		return podReady(p), "want Ready"
	})
	if !sawUnready {
		t.Errorf("never saw the pod Running and not Ready: Ready before the server started?")
	}
	cs := containerStatus(p, "main")
	started := cs.State.Running.StartedAt.Time
	readyAt := podCondition(p, v1.PodReady).LastTransitionTime.Time
	// Both are whole seconds; the server starts 5 s after the container.
	if d := readyAt.Sub(started); d < 4*time.Second {
		t.Errorf("Ready at %s, %s after the container started at %s: before its server did", readyAt.Format(time.TimeOnly), d, started.Format(time.TimeOnly))
	}
	if !cs.Ready || podCondition(p, v1.ContainersReady).Status != v1.ConditionTrue {
		t.Errorf("Ready pod whose container or ContainersReady is not: %s", describePod(p))
	}
	t.Logf("pod Ready %s after creation, %s after its container started (server starts at +5s)",
		took.Round(time.Millisecond), readyAt.Sub(started))

	// The failures before the server answered are reported.
	events, err := env.events(ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	unhealthy := 0
	for _, e := range events {
		if e.Reason == "Unhealthy" {
			unhealthy++
			if !strings.HasPrefix(e.Message, "Readiness probe failed: ") || e.Type != v1.EventTypeWarning {
				t.Errorf("event %s; want Warning `Readiness probe failed: ...`", describeEvent(e))
			}
		}
	}
	if unhealthy == 0 {
		t.Errorf("no Unhealthy event for the failed readiness probes")
	}
}

// An exec liveness probe that starts failing after 10 s restarts the
// container.
func TestProbeLivenessRestart(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	script := `touch /tmp/healthy; sleep 10; rm /tmp/healthy; exec sleep 3600`
	env.createPod(t, ns, shellPod("live", script, withGrace(2), withMain(func(c *v1.Container) {
		c.LivenessProbe = fastProbe(execAction("cat", "/tmp/healthy"))
	})))
	p, took := env.waitPod(t, ns, "live", 45*time.Second, func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		return cs != nil && cs.RestartCount >= 1, "want restartCount >= 1"
	})
	t.Logf("pod created -> container restarted by the liveness probe in %s", took.Round(time.Millisecond))
	if term := containerStatus(p, "main").LastTerminationState.Terminated; term == nil {
		t.Errorf("no lastState.terminated after the restart: %s", describePod(p))
	} else if d := term.FinishedAt.Sub(term.StartedAt.Time); d < 9*time.Second {
		t.Errorf("first container ran %s, killed before its probe could fail (after 10 s)", d)
	} else {
		t.Logf("first container ran %s; exit %d (%s)", d, term.ExitCode, term.Reason)
	}

	env.eventually(t, 10*time.Second, env.eventReasons(ns, "live", "Unhealthy", "Killing"))
	events, err := env.events(ns, "live")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		switch e.Reason {
		case "Unhealthy":
			if !strings.HasPrefix(e.Message, "Liveness probe failed: ") {
				t.Errorf("event %s; want `Liveness probe failed: ...`", describeEvent(e))
			}
		case "Killing":
			if want := "Container main failed liveness probe, will be restarted"; e.Message != want {
				t.Errorf("event %s; want message %q", describeEvent(e), want)
			}
		}
	}
}

// A startup probe keeps the liveness probe from killing a slow starter;
// the same pod without it is killed.
func TestProbeStartup(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	script := `sleep 8; touch /tmp/started; exec sleep 3600`
	liveness := withMain(func(c *v1.Container) { c.LivenessProbe = fastProbe(execAction("cat", "/tmp/started")) })
	env.createPod(t, ns, shellPod("slow", script, withGrace(1), liveness, withMain(func(c *v1.Container) {
		c.StartupProbe = fastProbe(execAction("cat", "/tmp/started"))
		c.StartupProbe.FailureThreshold = 30
	})))
	env.createPod(t, ns, shellPod("unguarded", script, withGrace(1), liveness))

	sawUnstarted := false
	p, took := env.waitPod(t, ns, "slow", 30*time.Second, func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		if cs != nil && cs.State.Running != nil && (cs.Started == nil || !*cs.Started) {
			sawUnstarted = true
		}
		return podReady(p), "want Ready"
	})
	t.Logf("slow starter Ready in %s", took.Round(time.Millisecond))
	if !sawUnstarted {
		t.Errorf("never saw the container running with started=false before its startup probe succeeded")
	}
	if cs := containerStatus(p, "main"); cs.RestartCount != 0 || cs.Started == nil || !*cs.Started {
		t.Errorf("slow starter: restartCount %d started %v; want 0, true", cs.RestartCount, cs.Started)
	}
	env.waitPod(t, ns, "unguarded", 20*time.Second, func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		return cs != nil && cs.RestartCount >= 1, "the liveness probe alone should restart it"
	})

	events, err := env.events(ns, "slow")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Reason == "Killing" || (e.Reason == "Unhealthy" && !strings.HasPrefix(e.Message, "Startup probe failed: ")) {
			t.Errorf("slow starter: event %s; want only startup probe failures", describeEvent(e))
		}
	}
	p, err = env.getPod(ns, "slow")
	if err != nil || p == nil || containerStatus(p, "main").RestartCount != 0 {
		t.Errorf("slow starter restarted after it started: err %v, %v", err, p)
	}
}

// A preStop hook runs, and its side effect is visible, before the
// container gets SIGTERM.
func TestHookPreStop(t *testing.T) {
	env := requireSuite(t)
	dir := t.TempDir() // removed after the namespace
	ns := env.namespace(t)
	script := `trap 'echo term >> /host/order; exit 0' TERM; echo started >> /host/order; while true; do sleep 0.2; done`
	env.createPod(t, ns, shellPod("stopper", script, withGrace(5),
		withVolume(hostPathVolume("host", dir, v1.HostPathDirectory), v1.VolumeMount{MountPath: "/host"}),
		withMain(func(c *v1.Container) {
			c.Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{
				Command: []string{"sh", "-c", "echo prestop >> /host/order; sleep 2"},
			}}}
		})))
	p, _ := env.readyPod(t, ns, "stopper", 30*time.Second)
	id := runningID(t, p, "main")
	order := filepath.Join(dir, "order")
	read := func() string { data, _ := os.ReadFile(order); return string(data) }
	if got := read(); got != "started\n" {
		t.Fatalf("%s reads %q before deletion, want started", order, got)
	}

	start := time.Now()
	env.deletePod(t, p)
	took := env.eventually(t, 10*time.Second, func() (bool, string) {
		got := read()
		return strings.Contains(got, "prestop"), "hook's file reads " + got
	})
	if err := env.containerRunning(id); err != nil {
		t.Errorf("when the preStop hook's write was visible: %v, want it running", err)
	}
	if got := read(); strings.Contains(got, "term") {
		t.Errorf("SIGTERM came with the preStop hook, not after it: %q", got)
	}
	t.Logf("pod deleted -> preStop side effect visible in %s, container still running", took.Round(time.Millisecond))
	env.eventually(t, 20*time.Second, env.podGone(ns, p.Name))
	if got := read(); got != "started\nprestop\nterm\n" {
		t.Errorf("%s reads %q, want started, prestop, term in that order", order, got)
	}
	t.Logf("pod gone %s after deletion (hook sleeps 2 s, then SIGTERM)", since(start))
}

// A postStart hook runs in the container; one that fails kills it.
func TestHookPostStart(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	hook := func(script string) podOption {
		return withMain(func(c *v1.Container) {
			c.Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", script}}}}
		})
	}
	env.createPod(t, ns, sleeper("hooked", withGrace(1), hook("echo poststart > /tmp/poststart")))
	env.createPod(t, ns, sleeper("badhook", withGrace(1), hook("echo failing; exit 7")))

	p, took := env.readyPod(t, ns, "hooked", 30*time.Second)
	t.Logf("pod with a postStart hook Ready in %s", took.Round(time.Millisecond))
	if got := env.execOK(t, runningID(t, p, "main"), "cat", "/tmp/poststart"); got != "poststart\n" {
		t.Errorf("/tmp/poststart reads %q, want the hook's write", got)
	}

	took = env.eventually(t, 30*time.Second, env.eventReasons(ns, "badhook", "FailedPostStartHook"))
	t.Logf("failing postStart hook -> FailedPostStartHook event in %s", took.Round(time.Millisecond))
	env.waitPod(t, ns, "badhook", 30*time.Second, func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		return cs != nil && cs.RestartCount >= 1, "want the container killed and restarted"
	})
}

// A sidecar (init container with restartPolicy Always) starts before the
// next init container and the app container, and keeps running.
func TestSidecarStartOrder(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	always := v1.ContainerRestartPolicyAlways
	pod := sleeper("app", withGrace(1))
	pod.Spec.InitContainers = []v1.Container{
		{Name: "sidecar", Image: busybox, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "3600"}, RestartPolicy: &always},
		{Name: "setup", Image: busybox, ImagePullPolicy: v1.PullNever, Command: []string{"sh", "-c", "sleep 1"}},
	}
	env.createPod(t, ns, pod)
	p, took := env.readyPod(t, ns, "app", 30*time.Second)
	t.Logf("pod with a sidecar and an init container Ready in %s", took.Round(time.Millisecond))

	if cs := containerStatus(p, "sidecar"); cs == nil || cs.State.Running == nil || !cs.Ready || cs.Started == nil || !*cs.Started {
		t.Errorf("sidecar not running, started and ready: %+v", cs)
	}
	if cs := containerStatus(p, "setup"); cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
		t.Errorf("init container setup did not complete: %+v", cs)
	}

	// The runtime's times: sidecar started < setup started, setup finished
	// <= main started.
	cs, err := env.podContainers(p.UID)
	if err != nil {
		t.Fatal(err)
	}
	type times struct{ started, finished int64 }
	byName := map[string]times{}
	for _, c := range cs {
		ctx, cancel := criContext()
		resp, err := env.rt.ContainerStatus(ctx, c.Id, false)
		cancel()
		if err != nil {
			t.Fatalf("container status %s: %v", shortID(c.Id), err)
		}
		s := resp.GetStatus()
		byName[c.Labels[labelContainerName]] = times{s.StartedAt, s.FinishedAt}
	}
	sc, setup, main := byName["sidecar"], byName["setup"], byName["main"]
	if sc.started == 0 || setup.started == 0 || main.started == 0 {
		t.Fatalf("runtime containers %s: want sidecar, setup and main started", describeContainers(cs))
	}
	if !(sc.started < setup.started && setup.finished <= main.started) {
		t.Errorf("start order: sidecar %s, setup %s (finished %s), main %s; want sidecar < setup, setup finished <= main",
			criTime(sc.started), criTime(setup.started), criTime(setup.finished), criTime(main.started))
	}
	t.Logf("runtime start times: sidecar %s, setup %s-%s, main %s", criTime(sc.started), criTime(setup.started), criTime(setup.finished), criTime(main.started))
}

func criTime(ns int64) string { return time.Unix(0, ns).Format("15:04:05.000") }

// A Job-style pod (restartPolicy Never) whose main container finishes
// succeeds although its sidecar was running.
func TestSidecarJobCompletes(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	always := v1.ContainerRestartPolicyAlways
	pod := shellPod("job", "sleep 2; echo done", withGrace(2), withRestartPolicy(v1.RestartPolicyNever))
	pod.Spec.InitContainers = []v1.Container{
		{Name: "sidecar", Image: busybox, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "3600"}, RestartPolicy: &always},
	}
	env.createPod(t, ns, pod)
	p, took := env.waitPod(t, ns, "job", 45*time.Second, func(p *v1.Pod) (bool, string) {
		return p.Status.Phase == v1.PodSucceeded, "want phase Succeeded"
	})
	main := containerStatus(p, "main")
	if main.State.Terminated == nil || main.State.Terminated.ExitCode != 0 || main.State.Terminated.Reason != "Completed" {
		t.Errorf("main container: %s, want terminated(Completed, exit 0)", describeState(main.State))
	} else {
		t.Logf("pod created -> Succeeded in %s; main finished at %s", took.Round(time.Millisecond), main.State.Terminated.FinishedAt.Format(time.TimeOnly))
	}
	if sc := containerStatus(p, "sidecar"); sc == nil || sc.State.Running != nil {
		t.Errorf("sidecar of a Succeeded pod: %+v, want it stopped", sc)
	}
	env.eventually(t, 10*time.Second, env.noContainers(p.UID, true))
}

// readinessGates hold the pod's Ready until the gate's condition is True.
func TestProbeReadinessGates(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	const gate = "berth.example/gate"
	pod := sleeper("gated", withGrace(1))
	pod.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: gate}}
	env.createPod(t, ns, pod)
	p, _ := env.waitPod(t, ns, "gated", 30*time.Second, func(p *v1.Pod) (bool, string) {
		c := podCondition(p, v1.ContainersReady)
		return c != nil && c.Status == v1.ConditionTrue, "want ContainersReady"
	})
	time.Sleep(time.Second)
	if p, _ = env.getPod(ns, "gated"); p == nil {
		t.Fatal("pod gone")
	}
	if c := podCondition(p, v1.PodReady); c == nil || c.Status != v1.ConditionFalse || c.Reason != "ReadinessGatesNotReady" {
		t.Errorf("Ready condition with the gate unset: %+v; want False, ReadinessGatesNotReady", c)
	}

	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":"True","lastTransitionTime":%q}]}}`,
		gate, time.Now().UTC().Format(time.RFC3339))
	ctx, cancel := apiContext()
	defer cancel()
	if _, err := env.kube.CoreV1().Pods(ns).Patch(ctx, "gated", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("patch the gate's condition: %v", err)
	}
	_, took := env.readyPod(t, ns, "gated", 30*time.Second)
	t.Logf("gate condition patched True -> pod Ready in %s", took.Round(time.Millisecond))
	// berth's status updates keep the condition it does not own.
	time.Sleep(2 * time.Second)
	p, err := env.getPod(ns, "gated")
	if err != nil || p == nil {
		t.Fatalf("get pod: %v", err)
	}
	if c := podCondition(p, gate); c == nil || c.Status != v1.ConditionTrue || !podReady(p) {
		t.Errorf("2 s later: gate condition %+v, %s; want it True and the pod Ready", c, describePod(p))
	}
}

// Probe results appear on berth's /metrics/probes as upstream's
// prober_probe_total, behind the kubelet API's authentication.
func TestProbeMetrics(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.createPod(t, ns, sleeper("metered", withGrace(1), withMain(func(c *v1.Container) {
		c.ReadinessProbe = fastProbe(execAction("true"))
		c.LivenessProbe = fastProbe(execAction("true"))
	})))
	unready := env.createPod(t, ns, sleeper("unready", withGrace(1), withMain(func(c *v1.Container) {
		c.ReadinessProbe = fastProbe(execAction("false"))
	})))
	metered, _ := env.readyPod(t, ns, "metered", 30*time.Second)

	if code, body := env.kubeletGetTLS(t, "/metrics/probes", false); code != http.StatusUnauthorized {
		t.Errorf("/metrics/probes without credentials: %d %q, want 401", code, body)
	}
	series := func(pod *v1.Pod, probe, result string) map[string]string {
		return map[string]string{"probe_type": probe, "result": result, "container": "main",
			"pod": pod.Name, "namespace": ns, "pod_uid": string(pod.UID)}
	}
	want := []map[string]string{
		series(metered, "Readiness", "successful"),
		series(metered, "Liveness", "successful"),
		series(unready, "Readiness", "failed"),
	}
	took := env.eventually(t, 20*time.Second, func() (bool, string) {
		code, body := env.kubeletGetTLS(t, "/metrics/probes", true)
		if code != http.StatusOK {
			return false, fmt.Sprintf("GET /metrics/probes: %d %s", code, body)
		}
		parser := expfmt.NewTextParser(model.LegacyValidation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			return false, fmt.Sprintf("parse /metrics/probes: %v", err)
		}
		var ours []string
		found := make([]bool, len(want))
		for _, m := range families["prober_probe_total"].GetMetric() {
			labels := map[string]string{}
			var names []string
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
				names = append(names, l.GetName())
			}
			if labels["namespace"] != ns {
				continue
			}
			slices.Sort(names)
			ours = append(ours, fmt.Sprintf("%v=%g", labels, m.GetCounter().GetValue()))
			if !slices.Equal(names, []string{"container", "namespace", "pod", "pod_uid", "probe_type", "result"}) {
				return false, fmt.Sprintf("prober_probe_total labels %v, want upstream's", names)
			}
			for i, w := range want {
				if maps.Equal(labels, w) && m.GetCounter().GetValue() >= 1 {
					found[i] = true
				}
			}
		}
		for i, ok := range found {
			if !ok {
				return false, fmt.Sprintf("no prober_probe_total%v >= 1; have %v", want[i], ours)
			}
		}
		return true, ""
	})
	t.Logf("probe results on /metrics/probes %s after the pod was Ready", took.Round(time.Millisecond))
}
