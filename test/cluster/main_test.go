package cluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	internalapi "k8s.io/cri-api/pkg/apis"
	criclient "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
)

// nodeName is berth's --hostname-override; hack/cluster.sh issues the node
// certificate for it (BERTH_NODE_NAME).
const nodeName = "berth-e2e"

// clusterPortVars are hack/cluster.sh's port settings. The suite takes
// ports the kernel has just handed out as free rather than fixed ones:
// other instances (a developer's `make cluster`, a colleague's suite) may
// run at the same time.
var clusterPortVars = [...]string{
	"BERTH_APISERVER_PORT", "BERTH_ETCD_PORT", "BERTH_ETCD_PEER_PORT", "BERTH_KCM_PORT", "BERTH_SCHEDULER_PORT",
}

// suite is what every test shares. TestMain sets it once before any test
// runs; it stays nil when BERTH_E2E is unset, and then every test skips.
var suite *environment

type environment struct {
	repo     string
	base     string // _output/cluster-e2e: the berth binary and stateDir
	stateDir string // hack/cluster.sh's STATE_DIR
	ctrdDir  string // hack/containerd.sh's STATE_DIR: stateDir/containerd when short enough
	endpoint string // unix:// address of containerd's CRI socket
	nodeDir  string // berth's manifests, root and pod logs
	// clusterEnv is hack/cluster.sh's environment: the node name and the
	// ports. Every `up` must see the same.
	clusterEnv []string

	kube  kubernetes.Interface
	rt    internalapi.RuntimeService
	berth *berth
}

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_E2E") == "" {
		os.Exit(m.Run()) // each test skips itself
	}
	// client-go and the CRI client log every failed call through klog; the
	// tests report what matters themselves, and the outages they cause on
	// purpose would flood the output.
	quietKlog()
	os.Exit(runSuite(m))
}

// runSuite sets up the environment, runs the tests and tears everything
// down however they end. A panic or a timeout kills the process before
// deferred calls run, so a watchdog process also stops the cluster once
// this process is gone; berth itself dies with the test binary.
func runSuite(m *testing.M) (code int) {
	env, err := setUp()
	if env != nil {
		defer func() {
			if err := env.tearDown(code == 0); err != nil {
				fmt.Fprintf(os.Stderr, "cluster-e2e: tear down: %v\n", err)
				if code == 0 {
					code = 1
				}
			}
		}()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster-e2e: set up: %v\n", err)
		return 1
	}
	suite = env
	return m.Run()
}

func setUp() (*environment, error) {
	repo, err := repoRoot()
	if err != nil {
		return nil, err
	}
	base := filepath.Join(repo, "_output", "cluster-e2e")
	// Two runs of this suite at once (e.g. by two developers on one
	// machine) need separate directories; CI uses the default.
	if dir := os.Getenv("BERTH_CLUSTER_E2E_DIR"); dir != "" {
		base = dir
	}
	env := &environment{repo: repo, base: base, stateDir: filepath.Join(base, "state")}
	env.nodeDir = filepath.Join(env.stateDir, "node")

	// A previous run that could not clean up (or kept its state after a
	// failure) leaves its state dir: stop whatever still runs there and
	// start from a fresh etcd.
	if _, err := os.Stat(env.stateDir); err == nil {
		if out, err := env.clusterScript("down"); err != nil {
			return nil, fmt.Errorf("stop the previous run's cluster: %w\n%s", err, out)
		}
		if err := os.RemoveAll(env.stateDir); err != nil {
			return nil, fmt.Errorf("remove the previous run's state: %w", err)
		}
	}
	if err := os.MkdirAll(env.stateDir, 0o755); err != nil {
		return nil, err
	}
	// containerd's socket path is limited to 107 bytes.
	env.ctrdDir = filepath.Join(env.stateDir, "containerd")
	if len(env.ctrdDir+"/containerd.sock.ttrpc") >= 100 {
		// The CI safety net (.ci/run) stops containerds under berth-e2e-*.
		if env.ctrdDir, err = os.MkdirTemp("", "berth-e2e-cluster-"); err != nil {
			return nil, err
		}
	}
	env.endpoint = "unix://" + filepath.Join(env.ctrdDir, "containerd.sock")
	env.clusterEnv = []string{"BERTH_NODE_NAME=" + nodeName}
	ports, err := freePorts(len(clusterPortVars))
	if err != nil {
		return nil, err
	}
	for i, v := range clusterPortVars {
		env.clusterEnv = append(env.clusterEnv, fmt.Sprintf("%s=%d", v, ports[i]))
	}

	start := time.Now()
	berthBin := filepath.Join(base, "bin", "berth")
	build := exec.Command("go", "build", "-o", berthBin, "./cmd/berth")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build berth: %w\n%s", err, out)
	}
	logf("built berth in %s", since(start))

	// The control plane binaries are built once (cached by hack/cluster.sh);
	// a cold build takes minutes and is not part of the suite's time.
	start = time.Now()
	cb := exec.Command(filepath.Join(repo, "hack", "cluster.sh"), "build")
	cb.Dir, cb.Stdout, cb.Stderr = repo, os.Stderr, os.Stderr
	if err := cb.Run(); err != nil {
		return nil, fmt.Errorf("hack/cluster.sh build: %w", err)
	}
	logf("control plane binaries ready in %s", since(start))

	if err := env.startWatchdog(); err != nil {
		return env, err
	}
	start = time.Now()
	if err := env.startClusterAndRuntime(); err != nil {
		return env, err
	}
	logf("control plane and containerd up in %s (state %s)", since(start), env.stateDir)

	if err := env.connect(); err != nil {
		return env, err
	}
	env.berth, err = env.newBerth(berthBin)
	if err != nil {
		return env, err
	}
	start = time.Now()
	if err := env.berth.start(); err != nil {
		return env, err
	}
	if _, err := env.poll(60*time.Second, env.nodeReady); err != nil {
		return env, fmt.Errorf("node %s did not become Ready: %w\n%s", nodeName, err, env.berth.logTail(0, 60))
	}
	logf("berth started; node %s Ready in %s", nodeName, since(start))
	return env, nil
}

// startClusterAndRuntime runs hack/cluster.sh up and hack/containerd.sh up
// side by side: neither needs the other.
func (env *environment) startClusterAndRuntime() error {
	var wg sync.WaitGroup
	var clusterErr, ctrdErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		if out, err := env.clusterScript("up"); err != nil {
			clusterErr = fmt.Errorf("hack/cluster.sh up: %w\n%s", err, out)
		}
	}()
	go func() {
		defer wg.Done()
		if out, err := env.containerdScript("up"); err != nil {
			ctrdErr = fmt.Errorf("hack/containerd.sh up: %w\n%s", err, out)
		}
	}()
	wg.Wait()
	return errors.Join(clusterErr, ctrdErr)
}

// connect builds the admin API client and the CRI client.
func (env *environment) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(env.stateDir, "admin.kubeconfig"))
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	// The tests poll; the defaults (5 qps) would throttle them.
	cfg.QPS, cfg.Burst, cfg.Timeout = 100, 200, 10*time.Second
	cfg.UserAgent = "berth-cluster-e2e"
	if env.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("API client: %w", err)
	}
	env.rt, err = criclient.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(env.endpoint).
		WithConnectionTimeout(10 * time.Second).
		WithTracerProvider(nil).
		Build(context.Background())
	if err != nil {
		return fmt.Errorf("CRI runtime client: %w", err)
	}
	return nil
}

// tearDown stops berth, containerd and the control plane. The state dir
// (logs, etcd) is removed only after a clean run.
func (env *environment) tearDown(passed bool) error {
	var errs []error
	if env.berth != nil {
		if err := env.berth.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if env.rt != nil {
		_ = env.rt.Close(context.Background())
	}
	if out, err := env.clusterScript("down"); err != nil {
		errs = append(errs, fmt.Errorf("hack/cluster.sh down: %w\n%s", err, out))
	}
	separate := env.ctrdDir != "" && !strings.HasPrefix(env.ctrdDir, env.stateDir+"/")
	if separate {
		if out, err := env.containerdScript("down"); err != nil {
			errs = append(errs, fmt.Errorf("hack/containerd.sh down: %w\n%s", err, out))
		}
	}
	env.saveArtifacts()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if separate {
		if err := os.RemoveAll(env.ctrdDir); err != nil {
			errs = append(errs, err)
		}
	}
	if passed {
		if err := os.RemoveAll(env.base); err != nil {
			errs = append(errs, err)
		}
	} else {
		logf("state, logs and etcd kept in %s", env.stateDir)
	}
	return errors.Join(errs...)
}

// saveArtifacts copies every log of the state dir to $BERTH_E2E_ARTIFACTS.
func (env *environment) saveArtifacts() {
	dir := os.Getenv("BERTH_E2E_ARTIFACTS")
	if dir == "" {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(env.stateDir, "*.log"))
	logs = append(logs, filepath.Join(env.ctrdDir, "containerd.log"))
	dst := filepath.Join(dir, "cluster-e2e")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		logf("save logs: %v", err)
		return
	}
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, filepath.Base(l)), data, 0o644)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			logf("save %s: %v", l, err)
		}
	}
}

// startWatchdog starts a detached shell that waits for this process to end
// and then stops the cluster (berth, containerd, control plane) if tearDown
// has not. It covers the ends that skip deferred calls: a panic in a test, a
// test timeout, a signal.
func (env *environment) startWatchdog() error {
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done
log="$3.watchdog.log"
ok=1
if [ -d "$3" ]; then
	"$2/hack/cluster.sh" down "$3" >"$log" 2>&1 || ok=0
fi
case "$4" in
"$3"/*) ;;
*) if [ -d "$4" ]; then
	if "$2/hack/containerd.sh" down "$4" >>"$log" 2>&1; then rm -rf "$4"; else ok=0; fi
fi ;;
esac
# Keep the log only when something could not be stopped.
if [ "$ok" = 1 ]; then rm -f "$log"; fi`
	cmd := exec.Command("sh", "-c", script, "watchdog", strconv.Itoa(os.Getpid()), env.repo, env.stateDir, env.ctrdDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	return cmd.Process.Release()
}

// clusterScript runs hack/cluster.sh CMD STATE_DIR with clusterEnv and
// extraEnv.
func (env *environment) clusterScript(cmdName string, extraEnv ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(env.repo, "hack", "cluster.sh"), cmdName, env.stateDir)
	cmd.Dir = env.repo
	cmd.Env = append(append(os.Environ(), env.clusterEnv...), extraEnv...)
	return cmd.CombinedOutput()
}

func (env *environment) containerdScript(cmdName string) ([]byte, error) {
	return env.containerdScriptCmd(cmdName).CombinedOutput()
}

// containerdScriptCmd is hack/containerd.sh CMD for the suite's containerd.
func (env *environment) containerdScriptCmd(cmdName string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(env.repo, "hack", "containerd.sh"), cmdName, env.ctrdDir)
	cmd.Dir = env.repo
	return cmd
}

// requireSuite skips t when the suite is not set up. Otherwise it makes sure
// that the apiserver and containerd answer and berth runs (an earlier test
// may have stopped one and failed before starting it again), and prints
// berth's log of t's time when t fails.
func requireSuite(t *testing.T) *environment {
	t.Helper()
	env := suite
	if env == nil {
		t.Skip("cluster e2e tests run only with BERTH_E2E=1 (make test-cluster): they need root, containerd and the control plane binaries")
	}
	if !env.apiserverReady() {
		t.Logf("the apiserver does not answer; running hack/cluster.sh up")
		if out, err := env.clusterScript("up"); err != nil {
			t.Fatalf("hack/cluster.sh up: %v\n%s", err, out)
		}
	}
	if !env.runtimeAnswers() {
		t.Logf("containerd does not answer; running hack/containerd.sh up")
		if out, err := env.containerdScript("up"); err != nil {
			t.Fatalf("hack/containerd.sh up: %v\n%s", err, out)
		}
	}
	if !env.berth.running() {
		t.Logf("berth is not running; starting it")
		if err := env.berth.start(); err != nil {
			t.Fatal(err)
		}
	}
	from := env.berth.logSize()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("berth log during %s:\n%s", t.Name(), env.berth.logTail(from, 300))
		}
	})
	return env
}

func (env *environment) apiserverReady() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := env.kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err == nil && string(body) == "ok"
}

func (env *environment) runtimeAnswers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := env.rt.Version(ctx, "")
	return err == nil
}

// repoRoot is BERTH_REPO_ROOT, or two levels up from this package.
func repoRoot() (string, error) {
	if r := os.Getenv("BERTH_REPO_ROOT"); r != "" {
		return filepath.Abs(r)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return filepath.Abs(filepath.Join(wd, "..", ".."))
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		// Held open until all are chosen, so that no port comes twice.
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cluster-e2e: "+format+"\n", args...)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// quietKlog sends klog's output nowhere: not to stderr, not to files.
func quietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		_ = fs.Set(name, value)
	}
	klog.SetOutput(io.Discard)
}
