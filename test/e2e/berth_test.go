package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// nodeName is the --hostname-override of every berth; static pods are named
// <manifest name>-<node>.
const nodeName = "e2e-node"

// berth is one berth process of a test, with its directories. It can be
// stopped and started again on the same directories and port.
type berth struct {
	t           *testing.T
	env         *environment
	manifestDir string
	rootDir     string
	logsDir     string
	configPath  string
	logPath     string
	port        int
	// endpoint is the CRI endpoint berth is given; the suite's containerd
	// unless a test sets another.
	endpoint string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited
	waitErr error
	killed  bool // the test stopped it on purpose
	starts  int
}

// newBerth prepares a berth for t (directories, config file, port) without
// starting it. When t ends, berth is stopped and every pod sandbox in the
// runtime is removed, so that the next test starts clean; berth's log is
// printed if t failed.
func newBerth(t *testing.T) *berth {
	t.Helper()
	env := requireSuite(t)
	dir, err := os.MkdirTemp(env.tmp, "test-")
	if err != nil {
		t.Fatal(err)
	}
	b := &berth{
		t:           t,
		env:         env,
		manifestDir: filepath.Join(dir, "manifests"),
		rootDir:     filepath.Join(dir, "root"),
		logsDir:     filepath.Join(dir, "pod-logs"),
		configPath:  filepath.Join(dir, "kubelet-config.yaml"),
		logPath:     filepath.Join(dir, "berth.log"),
		port:        freePort(t),
		endpoint:    env.endpoint,
	}
	for _, d := range []string{b.manifestDir, b.rootDir, b.logsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
podLogsDir: %s
fileCheckFrequency: 1s
`, b.logsDir)
	if err := os.WriteFile(b.configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.stop()
		if err := env.removeAllPods(); err != nil {
			t.Errorf("clean up pods after the test: %v", err)
		}
		if t.Failed() {
			b.dumpLog()
		}
		b.saveLog()
		// Keep the directories of a failed test for a look; the suite's tmp
		// is removed at the end anyway.
		if !t.Failed() {
			_ = os.RemoveAll(dir)
		}
	})
	return b
}

// startBerth is newBerth followed by start.
func startBerth(t *testing.T) *berth {
	t.Helper()
	b := newBerth(t)
	b.start()
	return b
}

// start runs berth and waits until /healthz answers "ok".
func (b *berth) start() {
	b.t.Helper()
	b.startWithoutHealth()
	b.eventually(15*time.Second, func() (bool, string) {
		body, err := b.get("/healthz")
		if err != nil {
			return false, err.Error()
		}
		return strings.TrimSpace(body) == "ok", "healthz: " + body
	})
}

// startWithoutHealth runs berth and waits until it serves /pods; it need
// not be healthy (its runtime may be down).
func (b *berth) startWithoutHealth() {
	b.t.Helper()
	b.mu.Lock()
	if b.cmd != nil && !b.hasExitedLocked() {
		b.mu.Unlock()
		b.t.Fatal("berth is already running")
	}
	b.starts++
	logFile, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.mu.Unlock()
		b.t.Fatal(err)
	}
	fmt.Fprintf(logFile, "===== e2e: berth start #%d at %s =====\n", b.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(b.env.berthBin,
		"--config", b.configPath,
		"--pod-manifest-path", b.manifestDir,
		"--container-runtime-endpoint", b.endpoint,
		"--root-dir", b.rootDir,
		"--hostname-override", nodeName,
		"--read-only-port", strconv.Itoa(b.port),
		"-v", "2",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Dies with the test binary, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		b.mu.Unlock()
		b.t.Fatalf("start berth: %v", err)
	}
	exited := make(chan struct{})
	b.cmd, b.exited, b.waitErr, b.killed = cmd, exited, nil, false
	b.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logFile.Close()
		b.mu.Lock()
		b.waitErr = err
		b.mu.Unlock()
		close(exited)
	}()

	b.eventually(15*time.Second, func() (bool, string) {
		_, err := b.get("/pods")
		return err == nil, fmt.Sprint("/pods: ", err)
	})
}

func (b *berth) hasExitedLocked() bool {
	select {
	case <-b.exited:
		return true
	default:
		return false
	}
}

// exitedUnexpectedly says why berth is gone when the test did not stop it.
func (b *berth) exitedUnexpectedly() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil || b.killed || !b.hasExitedLocked() {
		return nil
	}
	return fmt.Errorf("berth exited unexpectedly: %v", b.waitErr)
}

// signal sends sig to berth and waits up to timeout for it to exit.
func (b *berth) signal(sig syscall.Signal, timeout time.Duration) error {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	if cmd == nil || b.hasExitedLocked() {
		b.mu.Unlock()
		return nil
	}
	b.killed = true
	b.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("berth did not exit within %s of %v", timeout, sig)
	}
}

// kill stops berth with SIGKILL, as a crash would.
func (b *berth) kill() {
	b.t.Helper()
	if err := b.signal(syscall.SIGKILL, 10*time.Second); err != nil {
		b.t.Fatal(err)
	}
}

// stop asks berth to exit (SIGTERM) and kills it if it does not in time.
func (b *berth) stop() {
	if err := b.signal(syscall.SIGTERM, 10*time.Second); err != nil {
		b.t.Errorf("stop berth: %v; killing it", err)
		_ = b.signal(syscall.SIGKILL, 10*time.Second)
	}
}

// running reports whether berth's process is alive.
func (b *berth) running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd != nil && !b.hasExitedLocked()
}

// log returns berth's output so far (all starts).
func (b *berth) log() string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return ""
	}
	return string(data)
}

// dumpLog prints the end of berth's log into the test's output.
func (b *berth) dumpLog() {
	const maxLines = 300
	f, err := os.Open(b.logPath)
	if err != nil {
		b.t.Logf("no berth log: %v", err)
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	total := 0
	for sc.Scan() {
		total++
		lines = append(lines, sc.Text())
		if len(lines) > maxLines {
			lines = lines[1:]
		}
	}
	b.t.Logf("berth log %s (%d lines, last %d shown):\n%s", b.logPath, total, len(lines), strings.Join(lines, "\n"))
}

// saveLog copies berth's log to $BERTH_E2E_ARTIFACTS/<test>.log when that
// is set, so that the logs of passing tests can be read too.
func (b *berth) saveLog() {
	dir := os.Getenv("BERTH_E2E_ARTIFACTS")
	if dir == "" {
		return
	}
	data, err := os.ReadFile(b.logPath)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		name := strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name()) + ".log"
		err = os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	if err != nil {
		b.t.Logf("save berth log: %v", err)
	}
}

// eventually polls cond until it holds, failing the test after timeout or
// as soon as berth exits without being asked to.
func (b *berth) eventually(timeout time.Duration, cond func() (bool, string)) time.Duration {
	b.t.Helper()
	d, err := b.poll(timeout, cond)
	if err != nil {
		b.t.Fatal(err)
	}
	return d
}

// poll is eventually without the test: safe to call from any goroutine.
func (b *berth) poll(timeout time.Duration, cond func() (bool, string)) (time.Duration, error) {
	return poll(timeout, func() (bool, string, error) {
		ok, msg := cond()
		if ok {
			return true, "", nil
		}
		return false, msg, b.exitedUnexpectedly()
	})
}

// --- manifests ---

// writeManifest writes a manifest file atomically: berth never sees half a
// file. The file is written beside the manifest directory and renamed in.
func (b *berth) writeManifest(file string, content []byte) {
	b.t.Helper()
	tmp := filepath.Join(filepath.Dir(b.manifestDir), "."+file+".tmp")
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(b.manifestDir, file)); err != nil {
		b.t.Fatal(err)
	}
}

// writePod writes pod as <pod.Name>.yaml.
func (b *berth) writePod(pod *v1.Pod) {
	b.t.Helper()
	b.writeManifest(pod.Name+".yaml", podYAML(b.t, pod))
}

func (b *berth) removeManifest(file string) {
	b.t.Helper()
	if err := os.Remove(filepath.Join(b.manifestDir, file)); err != nil {
		b.t.Fatal(err)
	}
}

// --- read-only endpoint ---

func (b *berth) get(path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", b.port, path), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return string(body), nil
}

// pods returns berth's /pods.
func (b *berth) pods() ([]v1.Pod, error) {
	body, err := b.get("/pods")
	if err != nil {
		return nil, err
	}
	var list v1.PodList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, fmt.Errorf("decode /pods: %w", err)
	}
	return list.Items, nil
}

// pod returns the static pod made from the manifest pod named name, nil when
// /pods does not list it.
func (b *berth) pod(name string) (*v1.Pod, error) {
	pods, err := b.pods()
	if err != nil {
		return nil, err
	}
	for i := range pods {
		if pods[i].Name == staticName(name) {
			return &pods[i], nil
		}
	}
	return nil, nil
}

// podCond polls /pods for the pod named name and checks cond on it.
func (b *berth) podCond(name string, cond func(*v1.Pod) (bool, string)) func() (bool, string) {
	return func() (bool, string) {
		p, err := b.pod(name)
		if err != nil {
			return false, err.Error()
		}
		if p == nil {
			return false, fmt.Sprintf("pod %s not in /pods", staticName(name))
		}
		ok, msg := cond(p)
		return ok, fmt.Sprintf("pod %s: %s", p.Name, msg)
	}
}

// staticName is the name berth gives the static pod from a manifest's pod.
func staticName(name string) string { return name + "-" + nodeName }

// --- polling ---

// pollInterval is short: the timeouts are upper bounds, not waits.
const pollInterval = 100 * time.Millisecond

// poll calls cond until it holds (returning how long that took), until it
// returns an error, or until timeout. The error carries cond's last message.
func poll(timeout time.Duration, cond func() (bool, string, error)) (time.Duration, error) {
	start := time.Now()
	for {
		ok, msg, err := cond()
		if ok {
			return time.Since(start), nil
		}
		if err != nil {
			return time.Since(start), fmt.Errorf("after %s: %v (last: %s)", time.Since(start).Round(time.Millisecond), err, msg)
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("not within %s: %s", timeout, msg)
		}
		time.Sleep(pollInterval)
	}
}

// eventually polls cond until it holds or fails t after timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	d, err := poll(timeout, func() (bool, string, error) {
		ok, msg := cond()
		return ok, msg, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// parallel runs the checks at once and fails t with every error. Use it to
// wait for several pods together instead of one after another.
func parallel(t *testing.T, checks map[string]func() error) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]error{}
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := check(); err != nil {
				mu.Lock()
				errs[name] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for name, err := range errs {
		t.Errorf("%s: %v", name, err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
