package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// berth is the suite's berth process. Tests may kill it and start it again
// on the same directories and ports.
type berth struct {
	bin       string
	args      []string
	env       []string // beside the test's own environment
	logPath   string
	pidPath   string // hack/cluster.sh down stops the process it names
	healthURL string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited
	waitErr error
	killed  bool // stopped on purpose
	starts  int
}

// newBerth writes berth's configuration and directories in the layout of
// `hack/cluster.sh node-up` and returns a berth ready to start.
func (env *environment) newBerth(bin string) (*berth, error) {
	dirs := map[string]string{}
	for _, d := range []string{"manifests", "root", "pod-logs"} {
		dirs[d] = filepath.Join(env.nodeDir, d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			return nil, err
		}
	}
	// Not the default ports (10250, 10248), which a developer's berth may
	// hold.
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	kubeletPort, healthzPort := ports[0], ports[1]
	// The healthz port tells when a restarted berth is up without
	// involving the API. The kubelet API is secured as
	// `hack/cluster.sh node-up` secures it: client certs of the cluster's
	// CA, and the apiserver's webhooks.
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
address: 127.0.0.1
port: %d
healthzBindAddress: 127.0.0.1
healthzPort: %d
podLogsDir: %s
fileCheckFrequency: 1s
clusterDomain: cluster.local
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
`, kubeletPort, healthzPort, dirs["pod-logs"], filepath.Join(env.stateDir, "pki", "ca.crt"))
	configPath := filepath.Join(env.nodeDir, "kubelet-config.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	providerConfig, providerBin, err := env.writeCredentialProviders()
	if err != nil {
		return nil, err
	}
	return &berth{
		bin: bin,
		args: []string{
			"--config", configPath,
			"--kubeconfig", filepath.Join(env.stateDir, "node.kubeconfig"),
			"--hostname-override", nodeName,
			"--node-ip", "127.0.0.1",
			"--container-runtime-endpoint", env.endpoint,
			"--root-dir", dirs["root"],
			"--pod-manifest-path", dirs["manifests"],
			"--image-credential-provider-config", providerConfig,
			"--image-credential-provider-bin-dir", providerBin,
			"-v", "2",
		},
		logPath:   filepath.Join(env.stateDir, "berth.log"),
		pidPath:   filepath.Join(env.stateDir, "berth.pid"),
		healthURL: fmt.Sprintf("http://127.0.0.1:%d/healthz", healthzPort),
	}, nil
}

// manifestDir is berth's --pod-manifest-path.
func (env *environment) manifestDir() string { return filepath.Join(env.nodeDir, "manifests") }

// start runs berth and waits until /healthz answers "ok".
func (b *berth) start() error {
	if err := b.launch(); err != nil {
		return err
	}
	_, err := poll(20*time.Second, func() (bool, string, error) {
		body, err := b.get()
		if err != nil {
			return false, err.Error(), b.exitedUnexpectedly()
		}
		return body == "ok", "healthz: " + body, b.exitedUnexpectedly()
	})
	if err != nil {
		return fmt.Errorf("berth /healthz: %w\n%s", err, b.logTail(0, 40))
	}
	return nil
}

// launch runs berth without waiting for it to serve (a TLS bootstrap
// without rotation blocks berth's start until the certificate is issued).
func (b *berth) launch() error {
	b.mu.Lock()
	if b.cmd != nil && !b.hasExitedLocked() {
		b.mu.Unlock()
		return errors.New("berth is already running")
	}
	b.starts++
	logFile, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	fmt.Fprintf(logFile, "===== cluster-e2e: berth start #%d at %s =====\n", b.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(b.bin, b.args...)
	cmd.Env = append(os.Environ(), b.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Dies with the test binary, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		b.mu.Unlock()
		return fmt.Errorf("start berth: %w", err)
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
	return os.WriteFile(b.pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
}

func (b *berth) get() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.healthURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(body)), err
}

func (b *berth) hasExitedLocked() bool {
	select {
	case <-b.exited:
		return true
	default:
		return false
	}
}

// exitedUnexpectedly says why berth is gone when no test stopped it.
func (b *berth) exitedUnexpectedly() error {
	if b == nil {
		return nil
	}
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
		_ = os.Remove(b.pidPath)
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("berth did not exit within %s of %v", timeout, sig)
	}
}

// kill stops berth with SIGKILL, as a crash would.
func (b *berth) kill() error { return b.signal(syscall.SIGKILL, 10*time.Second) }

// stop asks berth to exit (SIGTERM) and kills it if it does not in time.
func (b *berth) stop() error {
	if err := b.signal(syscall.SIGTERM, 10*time.Second); err != nil {
		_ = b.kill()
		return fmt.Errorf("stop berth: %w; killed it", err)
	}
	return nil
}

// startCount is how many times berth was started.
func (b *berth) startCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.starts
}

func (b *berth) running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd != nil && !b.hasExitedLocked()
}

// logSize is the length of berth's log now: an offset for logTail.
func (b *berth) logSize() int64 {
	fi, err := os.Stat(b.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail returns at most maxLines last lines of berth's log from offset on.
func (b *berth) logTail(offset int64, maxLines int) string {
	f, err := os.Open(b.logPath)
	if err != nil {
		return fmt.Sprintf("(no berth log: %v)", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(berth log: %v)", err)
	}
	var lines []string
	total := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		total++
		lines = append(lines, sc.Text())
		if len(lines) > maxLines {
			lines = lines[1:]
		}
	}
	return fmt.Sprintf("(%s: %d lines, last %d shown)\n%s", b.logPath, total, len(lines), strings.Join(lines, "\n"))
}
