package cluster

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/test/internal/criproxy"
)

// The chaos scenarios (docs/reliability.md) run only with BERTH_CHAOS=1,
// never in CI: `make chaos` runs them all, `make chaos SCENARIO=BerthKill`
// one. They live in this package to share its control plane, containerd
// and berth helpers (Go cannot import another package's _test files).
// Each one churns CHAOS_PODS pods (default 100) while it injects its
// fault, then reports pods lost, needless restarts, time to converge and
// leaks on a line starting "CHAOS".

func requireChaos(t *testing.T) *environment {
	t.Helper()
	if os.Getenv("BERTH_CHAOS") == "" {
		t.Skip("chaos scenario: set BERTH_CHAOS=1 (make chaos)")
	}
	env := requireSuite(t)
	env.ensureBerthRuns(t)
	return env
}

func chaosInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// churn keeps n pods in a namespace, replacing and relabelling them at
// random: what a busy node sees. It knows what it asked for, so that the
// scenario can tell what berth got wrong.
type churn struct {
	env *environment
	ns  string
	n   int
	rng *rand.Rand

	mu sync.Mutex
	// live: the pods it created and has not deleted, by name.
	live map[string]types.UID
	// everUIDs: every pod it created, for the leak checks.
	everUIDs map[types.UID]string
	// deleted: pods it deleted, for "gone" checks.
	deleted                  map[types.UID]string
	seq                      int
	created, removed, relabs int
	errors                   int
	paused                   bool
}

func newChaosChurn(t *testing.T, env *environment, ns string, n int) *churn {
	c := &churn{env: env, ns: ns, n: n, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		live: map[string]types.UID{}, everUIDs: map[types.UID]string{}, deleted: map[types.UID]string{}}
	env.createConfigMap(t, ns, "chaos", map[string]string{"k": "v"})
	return c
}

// chaosPod sleeps, with a configMap and an emptyDir volume (set up and torn
// down at every start and removal) and a grace period of 1 s. It goes
// through the scheduler: bound directly, a replacement created while the
// pod it replaces still terminates would be refused by the node (OutOfpods:
// terminating pods count), which the scheduler avoids by waiting.
func chaosPod(name string) *v1.Pod {
	p := sleeper(name, withGrace(1))
	p.Spec.Volumes = []v1.Volume{
		{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "chaos"}}}},
		{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}, {Name: "scratch", MountPath: "/scratch"}}
	// Data the pod keeps while it lives: no fault may remove it.
	p.Spec.Containers[0].Command = []string{"sh", "-c", "[ -f /scratch/marker ] || echo " + name + " > /scratch/marker; exec sleep 3600"}
	p.Labels["chaos"] = "1"
	return p
}

func (c *churn) create(ctx context.Context) error {
	c.mu.Lock()
	c.seq++
	name := fmt.Sprintf("churn-%d", c.seq)
	c.mu.Unlock()
	p, err := c.env.kube.CoreV1().Pods(c.ns).Create(ctx, chaosPod(name), metav1.CreateOptions{})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.live[name], c.everUIDs[p.UID] = p.UID, name
	c.created++
	c.mu.Unlock()
	return nil
}

// fill creates pods until n are live.
func (c *churn) fill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for {
		c.mu.Lock()
		missing := c.n - len(c.live)
		c.mu.Unlock()
		if missing <= 0 {
			return
		}
		if err := c.create(ctx); err != nil {
			t.Fatalf("create pod: %v", err)
		}
	}
}

// step does one random change: delete a pod and create another, or
// relabel one (a change that must not restart anything).
func (c *churn) step(ctx context.Context) {
	c.mu.Lock()
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range c.live {
			if !yield(n) {
				return
			}
		}
	})
	if len(names) == 0 {
		c.mu.Unlock()
		return
	}
	name := names[c.rng.IntN(len(names))]
	replace := c.rng.IntN(2) == 0
	c.mu.Unlock()
	pods := c.env.kube.CoreV1().Pods(c.ns)
	var err error
	if replace {
		if err = pods.Delete(ctx, name, metav1.DeleteOptions{}); err == nil || apierrors.IsNotFound(err) {
			c.mu.Lock()
			uid := c.live[name]
			delete(c.live, name)
			c.deleted[uid] = name
			c.removed++
			c.mu.Unlock()
			err = c.create(ctx)
		}
	} else {
		patch := fmt.Sprintf(`{"metadata":{"labels":{"gen":"%d"}}}`, time.Now().UnixNano())
		if _, err = pods.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err == nil {
			c.mu.Lock()
			c.relabs++
			c.mu.Unlock()
		}
	}
	if err != nil {
		c.mu.Lock()
		c.errors++ // the API may be down on purpose
		c.mu.Unlock()
	}
}

// run churns every period until ctx ends; pause holds it.
func (c *churn) run(ctx context.Context, period time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
		c.mu.Lock()
		paused := c.paused
		c.mu.Unlock()
		if !paused {
			opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			c.step(opCtx)
			cancel()
		}
	}
}

func (c *churn) pause(p bool) {
	c.mu.Lock()
	c.paused = p
	c.mu.Unlock()
}

// snapshot is what the churn expects now: the live pods by UID.
func (c *churn) snapshot() (live map[types.UID]string, deleted map[types.UID]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	live = map[types.UID]string{}
	for n, uid := range c.live {
		live[uid] = n
	}
	return live, maps.Clone(c.deleted)
}

// chaosState is one look at the node: the API's pods of the namespace and
// the runtime's sandboxes and containers of it.
type chaosState struct {
	pods       map[types.UID]v1.Pod
	sandboxes  map[types.UID][]*runtimeapi.PodSandbox
	containers map[types.UID][]*runtimeapi.Container
}

func (env *environment) chaosLook(ns string) (*chaosState, error) {
	ctx, cancel := apiContext()
	defer cancel()
	list, err := env.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	st := &chaosState{pods: map[types.UID]v1.Pod{}, sandboxes: map[types.UID][]*runtimeapi.PodSandbox{},
		containers: map[types.UID][]*runtimeapi.Container{}}
	for _, p := range list.Items {
		st.pods[p.UID] = p
	}
	cctx, ccancel := criContext()
	defer ccancel()
	sbs, err := env.rt.ListPodSandbox(cctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodNamespace: ns}})
	if err != nil {
		return nil, err
	}
	for _, sb := range sbs {
		uid := types.UID(sb.GetMetadata().GetUid())
		st.sandboxes[uid] = append(st.sandboxes[uid], sb)
	}
	cs, err := env.containersIn(ns)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		uid := types.UID(c.Labels[labelPodUID])
		st.containers[uid] = append(st.containers[uid], c)
	}
	return st, nil
}

// converged: every live pod runs, Ready, in one ready sandbox with one
// running container, reported so; every deleted pod is gone from the API
// and the runtime. The message says what is not there yet.
func (st *chaosState) converged(live, deleted map[types.UID]string) (bool, string) {
	var problems []string
	for uid, name := range live {
		p, ok := st.pods[uid]
		switch {
		case !ok:
			problems = append(problems, name+": gone from the API")
			continue
		case !podReady(&p):
			problems = append(problems, name+": not Ready")
			continue
		}
		ready := 0
		for _, sb := range st.sandboxes[uid] {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				ready++
			}
		}
		running := len(runningOnly(st.containers[uid]))
		if ready != 1 || running != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d ready sandboxes, %d running containers", name, ready, running))
		}
	}
	for uid, name := range deleted {
		if _, ok := st.pods[uid]; ok {
			problems = append(problems, name+" (deleted): still in the API")
		} else if len(st.sandboxes[uid])+len(st.containers[uid]) > 0 {
			problems = append(problems, name+" (deleted): still in the runtime")
		}
	}
	slices.Sort(problems)
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
	}
	return len(problems) == 0, strings.Join(problems, "; ")
}

// report holds a scenario's figures.
type chaosReport struct {
	scenario        string
	faults          int
	lost            map[types.UID]bool // pods the churn kept that never ran again, or vanished from the API
	needless        map[types.UID]bool // pods with a container restarted (or replaced) that no change asked for
	converge        []time.Duration
	duplicates      int                // extra sandboxes for a pod at convergence
	dataLost        map[types.UID]bool // live pods whose emptyDir marker is gone
	leaks           []string
	created, delets int
}

func newChaosReport(scenario string) *chaosReport {
	return &chaosReport{scenario: scenario, lost: map[types.UID]bool{}, needless: map[types.UID]bool{}, dataLost: map[types.UID]bool{}}
}

func (r *chaosReport) log(t *testing.T) {
	t.Helper()
	var worst, sum time.Duration
	for _, d := range r.converge {
		worst = max(worst, d)
		sum += d
	}
	avg := time.Duration(0)
	if len(r.converge) > 0 {
		avg = sum / time.Duration(len(r.converge))
	}
	line := fmt.Sprintf("CHAOS %s: faults %d, pods created %d deleted %d, pods lost %d, needless restarts %d, "+
		"duplicate sandboxes %d, volume data lost %d, converged avg %s max %s, leaks %d %v",
		r.scenario, r.faults, r.created, r.delets, len(r.lost), len(r.needless), r.duplicates, len(r.dataLost),
		avg.Round(10*time.Millisecond), worst.Round(10*time.Millisecond), len(r.leaks), r.leaks)
	t.Log(line)
	if f, err := os.OpenFile(filepath.Join(suite.base, "chaos-results.txt"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
		f.Close()
	}
	if len(r.lost) > 0 || len(r.needless) > 0 || r.duplicates > 0 || len(r.dataLost) > 0 || len(r.leaks) > 0 {
		t.Errorf("%s: pods lost %d, needless restarts %d, duplicate sandboxes %d, volume data lost %d, leaks %v",
			r.scenario, len(r.lost), len(r.needless), r.duplicates, len(r.dataLost), r.leaks)
	}
}

// runningIDs is each pod's running container IDs, as the runtime has them.
func (st *chaosState) runningIDs() map[types.UID][]string {
	out := map[types.UID][]string{}
	for uid, cs := range st.containers {
		for _, c := range runningOnly(cs) {
			out[uid] = append(out[uid], c.Id)
		}
	}
	return out
}

// awaitConvergence waits up to timeout and returns how long it took; on
// timeout it counts the live pods not running as lost.
func (env *environment) awaitConvergence(t *testing.T, c *churn, r *chaosReport, timeout time.Duration) (*chaosState, time.Duration) {
	t.Helper()
	start := time.Now()
	var st *chaosState
	var msg string
	for {
		live, deleted := c.snapshot()
		var err error
		if st, err = env.chaosLook(c.ns); err == nil {
			var ok bool
			if ok, msg = st.converged(live, deleted); ok {
				took := time.Since(start)
				r.converge = append(r.converge, took)
				for _, sbs := range st.sandboxes {
					r.duplicates += max(len(sbs)-1, 0)
				}
				maps.Copy(r.dataLost, env.markersLost(t, live))
				return st, took
			}
		} else {
			msg = err.Error()
		}
		if time.Since(start) > timeout {
			t.Logf("not converged after %s: %s", timeout, msg)
			for uid := range live {
				var p v1.Pod
				ok := false
				if st != nil {
					p, ok = st.pods[uid]
				}
				if !ok || !podReady(&p) {
					r.lost[uid] = true
				}
			}
			r.converge = append(r.converge, time.Since(start))
			return st, time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// markersLost returns the live pods whose emptyDir no longer holds the
// marker their container wrote at its first start.
func (env *environment) markersLost(t *testing.T, live map[types.UID]string) map[types.UID]bool {
	lost := map[types.UID]bool{}
	for uid, name := range live {
		path := filepath.Join(env.nodeDir, "root", "pods", string(uid), "volumes", "kubernetes.io~empty-dir", "scratch", "marker")
		if data, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(data)) != name {
			t.Logf("pod %s: emptyDir marker: %q, %v", name, data, err)
			lost[uid] = true
		}
	}
	return lost
}

// needlessRestarts compares the running containers of the pods that lived
// through a fault with those before: any that changed restarted without a
// reason (the churn changes only labels), as did any container whose
// restartCount is not 0.
func needlessRestarts(t *testing.T, before, after *chaosState, excused map[types.UID]bool) map[types.UID]bool {
	out := map[types.UID]bool{}
	running := after.runningIDs()
	for uid, ids := range before.runningIDs() {
		now, ok := running[uid]
		if _, live := after.pods[uid]; excused[uid] || !ok || !live {
			continue // deleted by the churn meanwhile, or not running (lost)
		}
		if !slices.Equal(slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(now))) {
			t.Logf("pod %s: containers %v became %v", uid, ids, now)
			out[uid] = true
		}
	}
	for uid, p := range after.pods {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount > 0 && !excused[uid] {
				t.Logf("pod %s: container %s restartCount %d", p.Name, cs.Name, cs.RestartCount)
				out[uid] = true
			}
		}
	}
	return out
}

// leaks lists what removed pods left on the node: sandboxes or containers,
// mounts, pod directories, pod cgroups. It waits up to timeout for the
// orphan clean-ups to run.
func (env *environment) chaosLeaks(t *testing.T, c *churn, timeout time.Duration) []string {
	t.Helper()
	var leaks []string
	deadline := time.Now().Add(timeout)
	for {
		live, _ := c.snapshot()
		c.mu.Lock()
		ever := maps.Clone(c.everUIDs)
		c.mu.Unlock()
		leaks = leaks[:0]
		st, err := env.chaosLook(c.ns)
		if err != nil {
			leaks = append(leaks, "look: "+err.Error())
		}
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		root := filepath.Join(env.nodeDir, "root", "pods")
		cgroups := podCgroupDirs()
		for uid, name := range ever {
			if _, ok := live[uid]; ok {
				continue
			}
			if st != nil && len(st.sandboxes[uid])+len(st.containers[uid]) > 0 {
				leaks = append(leaks, fmt.Sprintf("%s: %d sandboxes, %d containers", name, len(st.sandboxes[uid]), len(st.containers[uid])))
			}
			if strings.Contains(string(mounts), filepath.Join(root, string(uid))) {
				leaks = append(leaks, name+": mount")
			}
			if _, err := os.Stat(filepath.Join(root, string(uid))); err == nil {
				leaks = append(leaks, name+": pod dir")
			}
			if dir, ok := cgroups[uid]; ok {
				leaks = append(leaks, name+": cgroup "+dir)
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			return slices.Clone(leaks)
		}
		time.Sleep(time.Second)
	}
}

// podCgroupDirs finds the pod cgroups (pod<uid>) under kubepods in the
// memory hierarchy (cgroup v1) or the unified one.
func podCgroupDirs() map[types.UID]string {
	out := map[types.UID]string{}
	for _, base := range []string{"/sys/fs/cgroup/memory/kubepods", "/sys/fs/cgroup/kubepods"} {
		_ = filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if name := d.Name(); strings.HasPrefix(name, "pod") && len(name) > 30 {
				out[types.UID(strings.TrimPrefix(name, "pod"))] = path
				return filepath.SkipDir
			}
			return nil
		})
	}
	return out
}

// chaosScenario runs the churn, calls fault faults times (each fault
// returns what its pods may legitimately restart and when the node was
// back), waits for convergence after each and reports.
func chaosScenario(t *testing.T, name string, faults int, fault func(t *testing.T, c *churn, before *chaosState) (excused map[types.UID]bool)) {
	env := requireChaos(t)
	ns := env.namespace(t)
	n := chaosInt("CHAOS_PODS", 100)
	c := newChaosChurn(t, env, ns, n)
	start := time.Now()
	c.fill(t)
	if _, err := env.poll(10*time.Minute, func() (bool, string) {
		live, deleted := c.snapshot()
		st, err := env.chaosLook(ns)
		if err != nil {
			return false, err.Error()
		}
		return st.converged(live, deleted)
	}); err != nil {
		t.Fatalf("the %d pods did not all start: %v", n, err)
	}
	t.Logf("%d pods running in %s", n, since(start))
	r := newChaosReport(name)
	// Pods whose restarts a fault caused, for every later check too.
	excused := map[types.UID]bool{}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.run(ctx, 200*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()
	for i := range faults {
		// A random point of the churn.
		time.Sleep(time.Duration(2000+rand.IntN(8000)) * time.Millisecond)
		c.pause(true)
		before, err := env.chaosLook(ns)
		c.pause(false)
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(excused, fault(t, c, before))
		c.pause(true)
		after, took := env.awaitConvergence(t, c, r, 3*time.Minute)
		maps.Copy(r.needless, needlessRestarts(t, before, after, excused))
		t.Logf("fault %d/%d: converged in %s", i+1, faults, took.Round(10*time.Millisecond))
		r.faults++
		c.pause(false)
	}
	cancel()
	wg.Wait()
	c.mu.Lock()
	r.created, r.delets = c.created, c.removed
	c.mu.Unlock()
	// Everything goes; then nothing may be left of any pod.
	ctx2, cancel2 := apiContext()
	_ = env.kube.CoreV1().Pods(ns).DeleteCollection(ctx2, metav1.DeleteOptions{}, metav1.ListOptions{})
	cancel2()
	c.mu.Lock()
	for n, uid := range c.live {
		c.deleted[uid] = n
	}
	c.live = map[string]types.UID{}
	c.mu.Unlock()
	env.awaitConvergence(t, c, newChaosReport("end"), 3*time.Minute)
	r.leaks = env.chaosLeaks(t, c, 30*time.Second)
	r.log(t)
}

// TestChaosBerthKill: berth SIGKILLed at random points of the churn (pods
// starting, terminating, volumes being set up), restarted after 0-3 s.
func TestChaosBerthKill(t *testing.T) {
	chaosScenario(t, "BerthKill", chaosInt("CHAOS_FAULTS", 5), func(t *testing.T, c *churn, _ *chaosState) map[types.UID]bool {
		if err := c.env.berth.kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Millisecond)
		if err := c.env.berth.start(); err != nil {
			t.Fatal(err)
		}
		return nil
	})
}

// TestChaosContainerd: containerd stopped (SIGTERM; its shims and
// containers run on) for 0-5 s and started again, and a random pod's shim
// SIGKILLed (its containers die: that pod restarts them, no other).
func TestChaosContainerd(t *testing.T) {
	round := 0
	chaosScenario(t, "Containerd", chaosInt("CHAOS_FAULTS", 4), func(t *testing.T, c *churn, before *chaosState) map[types.UID]bool {
		round++
		if round%2 == 1 {
			c.env.restartContainerd(t, time.Duration(rand.IntN(5000))*time.Millisecond)
			return nil
		}
		uid, sb := randomReadySandbox(before)
		if sb == "" {
			t.Fatal("no ready sandbox to kill the shim of")
		}
		pid := shimPID(t, sb)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill shim %d: %v", pid, err)
		}
		t.Logf("killed the shim (pid %d) of pod %s", pid, uid)
		return map[types.UID]bool{uid: true}
	})
}

func randomReadySandbox(st *chaosState) (types.UID, string) {
	var uids []types.UID
	for uid, sbs := range st.sandboxes {
		if _, ok := st.pods[uid]; ok && len(sbs) == 1 && sbs[0].State == runtimeapi.PodSandboxState_SANDBOX_READY {
			uids = append(uids, uid)
		}
	}
	if len(uids) == 0 {
		return "", ""
	}
	uid := uids[rand.IntN(len(uids))]
	return uid, st.sandboxes[uid][0].Id
}

// shimPID finds the containerd-shim-runc-v2 serving sandbox id.
func shimPID(t *testing.T, id string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-runc-v2") && slices.Contains(args, id) {
			return pid
		}
	}
	t.Fatalf("no shim for sandbox %s", shortID(id))
	return 0
}

// restartContainerd stops the suite's containerd daemon as a service
// manager would (SIGTERM: the shims and containers run on), waits down,
// and starts it again on the same configuration and state.
func (env *environment) restartContainerd(t *testing.T, down time.Duration) {
	t.Helper()
	pidPath := filepath.Join(env.ctrdDir, "containerd.pid")
	data, err := os.ReadFile(pidPath)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("containerd.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop containerd: %v", err)
	}
	env.eventually(t, 20*time.Second, func() (bool, string) { return !processRunning(pid), "containerd still runs" })
	time.Sleep(down)
	logFile, err := os.OpenFile(filepath.Join(env.ctrdDir, "containerd.log"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("containerd", "--config", filepath.Join(env.ctrdDir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	go func() { _ = cmd.Wait() }() // reaped whoever stops it (hack/containerd.sh down)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, 30*time.Second, func() (bool, string) { return env.runtimeAnswers(), "containerd does not answer" })
	t.Logf("containerd stopped for %s, restarted (pid %d)", down.Round(time.Millisecond), cmd.Process.Pid)
}

// TestChaosAPIOutage: the API server and etcd stopped for CHAOS_OUTAGE
// seconds (default 60; 600 for the figure in docs/reliability.md), a few
// pods deleted gracefully just before. Running pods must be untouched,
// the deleted ones stopped meanwhile and gone from the API once it is
// back, and the node's status caught up.
func TestChaosAPIOutage(t *testing.T) {
	outage := time.Duration(chaosInt("CHAOS_OUTAGE", 60)) * time.Second
	chaosScenario(t, "APIOutage", 1, func(t *testing.T, c *churn, before *chaosState) map[types.UID]bool {
		env := c.env
		c.pause(true)
		defer c.pause(false)
		// Deleted with a grace period of 1 s just before the outage: berth
		// learns of it and must finish it alone.
		live, _ := c.snapshot()
		var doomed []types.UID
		for uid, name := range live {
			if len(doomed) == 5 {
				break
			}
			ctx, cancel := apiContext()
			err := env.kube.CoreV1().Pods(c.ns).Delete(ctx, name, metav1.DeleteOptions{})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			delete(c.live, name)
			c.deleted[uid] = name
			c.removed++
			c.mu.Unlock()
			doomed = append(doomed, uid)
		}
		t.Cleanup(func() {
			if !env.apiserverReady() {
				if out, err := env.clusterScript("up"); err != nil {
					t.Errorf("hack/cluster.sh up: %v\n%s", err, out)
				}
			}
		})
		time.Sleep(300 * time.Millisecond) // the watch delivers the deletions
		env.stopComponent(t, "kube-apiserver")
		env.stopComponent(t, "etcd")
		down := time.Now()
		running := before.runningIDs()
		for time.Since(down) < outage {
			if err := env.berth.exitedUnexpectedly(); err != nil {
				t.Fatalf("%s into the outage: %v", since(down), err)
			}
			time.Sleep(time.Second)
		}
		cs, err := env.containersIn(c.ns)
		if err != nil {
			t.Fatal(err)
		}
		stillRunning := map[string]bool{}
		for _, ctr := range runningOnly(cs) {
			stillRunning[ctr.Id] = true
		}
		for uid, ids := range running {
			if slices.Contains(doomed, uid) {
				for _, id := range ids {
					if stillRunning[id] {
						t.Errorf("pod %s, deleted before the outage, still runs %s after %s", uid, shortID(id), outage)
					}
				}
				continue
			}
			for _, id := range ids {
				if !stillRunning[id] {
					t.Errorf("pod %s: container %s stopped during the outage", uid, shortID(id))
				}
			}
		}
		start := time.Now()
		if out, err := env.clusterScript("up"); err != nil {
			t.Fatalf("hack/cluster.sh up: %v\n%s", err, out)
		}
		back := time.Now()
		t.Logf("API down %s; hack/cluster.sh up took %s", back.Sub(down).Round(time.Second), back.Sub(start).Round(time.Millisecond))
		took := env.eventually(t, 60*time.Second, env.leaseRenewedAfter(back))
		ready := env.eventually(t, 60*time.Second, env.nodeReady)
		t.Logf("after the API came back: lease renewed in %s, node Ready in %s", took.Round(time.Millisecond), ready.Round(time.Millisecond))
		return nil
	})
}

// TestChaosSlowRuntime: berth behind a CRI proxy that delays every call
// by CHAOS_CRI_DELAY_MS (default 200), SIGKILLed at random points as in
// BerthKill: slowness widens every window a kill can fall into.
func TestChaosSlowRuntime(t *testing.T) {
	delay := time.Duration(chaosInt("CHAOS_CRI_DELAY_MS", 200)) * time.Millisecond
	env := requireChaos(t)
	proxy, err := criproxy.Start(filepath.Join(t.TempDir(), "slow-cri.sock"), env.endpoint, criproxy.Options{Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	// Clean-ups run last first: the proxy stops after the suite's berth
	// is back on containerd itself.
	t.Cleanup(proxy.Stop)
	env.restartBerthWith(t, "", "--container-runtime-endpoint", proxy.Endpoint)
	chaosScenario(t, "SlowRuntime", chaosInt("CHAOS_FAULTS", 3), func(t *testing.T, c *churn, _ *chaosState) map[types.UID]bool {
		if err := c.env.berth.kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Millisecond)
		if err := c.env.berth.start(); err != nil {
			t.Fatal(err)
		}
		return nil
	})
}
