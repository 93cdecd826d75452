package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// privateBus runs dbus-daemon on a socket of its own until t ends and
// returns its address: berth finds it as DBUS_SYSTEM_BUS_ADDRESS.
func privateBus(t *testing.T) string {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skipf("graceful node shutdown test needs dbus-daemon (Debian package dbus-daemon): %v", err)
	}
	// A short path: unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "berth-e2e-dbus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "bus")
	config := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`, socket)
	cfg := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+cfg, "--nofork", "--nopidfile")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := os.Create(filepath.Join(dir, "dbus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		out.Close()
	})
	if _, err := poll(10*time.Second, func() (bool, string, error) {
		_, err := os.Stat(socket)
		return err == nil, fmt.Sprintf("no socket %s", socket), nil
	}); err != nil {
		log, _ := os.ReadFile(out.Name())
		t.Fatalf("dbus-daemon: %v\n%s", err, log)
	}
	return "unix:path=" + socket
}

// standinLogind is the test's own systemd-logind on the private bus: it
// answers InhibitDelayMaxUSec, hands out delay locks (pipes, as logind's
// are) and sends PrepareForShutdown when the test says so.
type standinLogind struct {
	conn *dbus.Conn

	mu    sync.Mutex
	locks []lockPipe
}

type lockPipe struct {
	r, w *os.File
	what string
	mode string
	ino  uint64
}

func startStandinLogind(t *testing.T, address string, delay time.Duration) *standinLogind {
	t.Helper()
	conn, err := dbus.Connect(address)
	if err != nil {
		t.Fatalf("connect to the private bus: %v", err)
	}
	l := &standinLogind{conn: conn}
	t.Cleanup(func() {
		conn.Close()
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, p := range l.locks {
			p.r.Close()
			p.w.Close()
		}
	})
	const path = dbus.ObjectPath("/org/freedesktop/login1")
	if err := conn.Export(l, path, "org.freedesktop.login1.Manager"); err != nil {
		t.Fatal(err)
	}
	if _, err := prop.Export(conn, path, prop.Map{"org.freedesktop.login1.Manager": {
		"InhibitDelayMaxUSec": {Value: uint64(delay / time.Microsecond), Emit: prop.EmitFalse},
	}}); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName("org.freedesktop.login1", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.login1: %v (reply %v)", err, reply)
	}
	return l
}

// Inhibit is logind's method: the lock is the write end of a pipe, held
// until every copy of it is closed.
func (l *standinLogind) Inhibit(what, who, why, mode string) (dbus.UnixFD, *dbus.Error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, dbus.MakeFailedError(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(r.Fd()), &st); err != nil {
		return 0, dbus.MakeFailedError(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.locks = append(l.locks, lockPipe{r: r, w: w, what: what, mode: mode, ino: st.Ino})
	return dbus.UnixFD(w.Fd()), nil
}

func (l *standinLogind) prepareForShutdown(active bool) error {
	return l.conn.Emit("/org/freedesktop/login1", "org.freedesktop.login1.Manager.PrepareForShutdown", active)
}

// heldBy returns how many of the locks handed out process pid holds.
func (l *standinLogind) heldBy(pid int) (int, error) {
	l.mu.Lock()
	inos := map[string]bool{}
	for _, p := range l.locks {
		if p.what == "shutdown" && p.mode == "delay" {
			inos[fmt.Sprintf("pipe:[%d]", p.ino)] = true
		}
	}
	l.mu.Unlock()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && inos[target] {
			n++
		}
	}
	return n, nil
}

func (b *berth) pid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// TestGracefulNodeShutdown runs berth with shutdownGracePeriodByPodPriority
// against a stand-in logind on a private D-Bus: berth takes a delay lock;
// on PrepareForShutdown(true) the node goes NotReady, new pods are
// refused, the pods are terminated lowest priority first, each within its
// group's budget, with upstream's status, and the lock is released; on
// PrepareForShutdown(false) the node is Ready again and the lock taken
// again.
func TestGracefulNodeShutdown(t *testing.T) {
	env := requireSuite(t)
	address := privateBus(t)
	logind := startStandinLogind(t, address, time.Minute)
	ns := env.namespace(t)

	ctx, cancel := apiContext()
	defer cancel()
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "berth-e2e-shutdown-high"}, Value: 100000}
	if _, err := env.kube.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PriorityClass: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := apiContext()
		defer cancel()
		_ = env.kube.SchedulingV1().PriorityClasses().Delete(ctx, pc.Name, metav1.DeleteOptions{})
	})

	const budget = 3 // seconds, per group
	env.berth.mu.Lock()
	env.berth.env = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + address}
	env.berth.mu.Unlock()
	env.restartBerthWith(t, fmt.Sprintf("shutdownGracePeriodByPodPriority:\n- priority: 0\n  shutdownGracePeriodSeconds: %d\n- priority: %d\n  shutdownGracePeriodSeconds: %d\n", budget, pc.Value, budget))
	// Runs before the suite's berth is restored (cleanups run last first).
	t.Cleanup(func() {
		env.berth.mu.Lock()
		env.berth.env = nil
		env.berth.mu.Unlock()
	})
	locked := func(want int) func() (bool, string) {
		return func() (bool, string) {
			n, err := logind.heldBy(env.berth.pid())
			if err != nil {
				return false, err.Error()
			}
			return n == want, fmt.Sprintf("berth holds %d delay locks, want %d", n, want)
		}
	}
	env.eventually(t, 10*time.Second, locked(1))

	// low ignores SIGTERM: it is killed when its group's budget ends.
	// high exits on SIGTERM.
	env.createPod(t, ns, shellPod("low", "trap '' TERM; while true; do sleep 1; done", withGrace(30)))
	env.createPod(t, ns, shellPod("high", "trap 'exit 0' TERM; while true; do sleep 1; done", withGrace(30), func(p *v1.Pod) {
		p.Spec.PriorityClassName = pc.Name
	}))
	env.readyPod(t, ns, "low", 30*time.Second)
	env.readyPod(t, ns, "high", 30*time.Second)

	start := time.Now()
	if err := logind.prepareForShutdown(true); err != nil {
		t.Fatal(err)
	}
	took := env.eventually(t, 10*time.Second, func() (bool, string) {
		ready, msg := env.nodeReady()
		return !ready && strings.Contains(msg, "node is shutting down"), msg
	})
	t.Logf("node NotReady %s after PrepareForShutdown", took.Round(time.Millisecond))

	refused := env.createPod(t, ns, sleeper("late", onNode()))
	terminated := func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		done := p.Status.Phase == v1.PodFailed && cs != nil && cs.State.Terminated != nil
		return done, describePod(p)
	}
	low, _ := env.waitPod(t, ns, "low", 20*time.Second, terminated)
	high, _ := env.waitPod(t, ns, "high", 20*time.Second, terminated)
	for _, p := range []*v1.Pod{low, high} {
		if p.Status.Reason != "Terminated" || p.Status.Message != "Pod was terminated in response to imminent node shutdown." {
			t.Errorf("pod %s: reason %q message %q, want upstream's", p.Name, p.Status.Reason, p.Status.Message)
		}
		c := podCondition(p, v1.DisruptionTarget)
		if c == nil || c.Status != v1.ConditionTrue || c.Reason != v1.PodReasonTerminationByKubelet {
			t.Errorf("pod %s: DisruptionTarget condition %+v, want True (TerminationByKubelet)", p.Name, c)
		}
	}
	lowEnd, highEnd := containerStatus(low, "main").State.Terminated, containerStatus(high, "main").State.Terminated
	if lowEnd.ExitCode != 137 {
		t.Errorf("low: exit code %d, want 137 (killed when its %ds budget ended)", lowEnd.ExitCode, budget)
	}
	if highEnd.ExitCode != 0 {
		t.Errorf("high: exit code %d, want 0 (its SIGTERM trap)", highEnd.ExitCode)
	}
	if highEnd.FinishedAt.Before(&lowEnd.FinishedAt) {
		t.Errorf("high finished at %s, before low (%s): the low priority group goes first", highEnd.FinishedAt, lowEnd.FinishedAt)
	}
	if d := lowEnd.FinishedAt.Sub(start); d < (budget-1)*time.Second || d > (budget+5)*time.Second {
		t.Errorf("low killed %s after the shutdown began, want about its budget of %ds", d, budget)
	}
	t.Logf("low killed after %s, high ended after %s", lowEnd.FinishedAt.Sub(start).Round(time.Second), highEnd.FinishedAt.Sub(start).Round(time.Second))

	env.waitPod(t, ns, refused.Name, 10*time.Second, func(p *v1.Pod) (bool, string) {
		return p.Status.Phase == v1.PodFailed && p.Status.Reason == "NodeShutdown" &&
			// Upstream's rejection prefixes the admit handler's message.
			p.Status.Message == "Pod was rejected: Pod was rejected as the node is shutting down.", describePod(p)
	})
	took = env.eventually(t, 10*time.Second, locked(0))
	t.Logf("delay lock released %s after the pods ended", took.Round(time.Millisecond))
	env.eventually(t, 10*time.Second, func() (bool, string) {
		events, err := env.kube.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Node,reason=NodeShutdown"})
		if err != nil {
			return false, err.Error()
		}
		for _, e := range events.Items {
			if e.Message == "Shutdown manager detected shutdown event" && !e.LastTimestamp.Time.Before(start.Add(-time.Second).Truncate(time.Second)) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no NodeShutdown event on the node among %d", len(events.Items))
	})

	// The shutdown is cancelled: Ready again, the lock taken again.
	if err := logind.prepareForShutdown(false); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, 10*time.Second, locked(1))
	env.eventually(t, 20*time.Second, env.nodeReady)
}
