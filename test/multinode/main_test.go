// Package multinode is the smoke test of a cluster of several berth nodes
// (hack/multinode.sh, `make cluster NODES=N`): two nodes, each in a network
// namespace of its own with its own containerd, a pod CIDR from the
// controller-manager, routes between them, and kube-proxy, CoreDNS and
// metrics-server built locally and run on the berth nodes.
//
// It runs only when BERTH_E2E is set (`make test-cluster`) and needs root,
// containerd, runc, the CNI plugins, the local images and the binaries of
// `hack/cluster.sh build` (built when missing; the add-ons' are built by
// hack/addons.sh and cached under _output/addons). It uses a bridge, a
// node network, a cluster CIDR and node names of its own, so a developer's
// `make cluster NODES=3` can run beside it. Everything is removed at the
// end (hack/multinode.sh down); a watchdog does it if the test binary dies
// first. BERTH_E2E_ARTIFACTS, when set, receives the nodes' logs.
package multinode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The test's own network and names, apart from `make cluster NODES=N`'s.
const (
	nodeCount   = 2
	bridge      = "berth-mnt"
	nodeNet     = "10.234.0"
	clusterCIDR = "10.245.0.0/16"
	nodePrefix  = "berth-mnt"
)

// portVars are hack/cluster.sh's port settings: the suite takes ports the
// kernel has just handed out as free, as test/cluster does.
var portVars = [...]string{
	"BERTH_APISERVER_PORT", "BERTH_ETCD_PORT", "BERTH_ETCD_PEER_PORT", "BERTH_KCM_PORT", "BERTH_SCHEDULER_PORT",
}

// suite is the running cluster; nil when BERTH_E2E is unset.
var suite *environment

type environment struct {
	repo     string
	base     string // _output/multinode-e2e: berth's binary and the state dir
	stateDir string
	env      []string // hack/multinode.sh's environment
	kubectl  string
	kube     kubernetes.Interface
	upTime   time.Duration
}

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_E2E") == "" {
		os.Exit(m.Run()) // each test skips itself
	}
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) (code int) {
	env, err := setUp()
	if env != nil {
		defer func() {
			if err := env.tearDown(code == 0); err != nil {
				fmt.Fprintf(os.Stderr, "multinode-e2e: tear down: %v\n", err)
				if code == 0 {
					code = 1
				}
			}
		}()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "multinode-e2e: set up: %v\n", err)
		return 1
	}
	suite = env
	return m.Run()
}

func setUp() (*environment, error) {
	repo := os.Getenv("BERTH_REPO_ROOT")
	if repo == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		repo = filepath.Join(wd, "..", "..")
	}
	repo, err := filepath.Abs(repo)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(repo, "_output", "multinode-e2e")
	env := &environment{repo: repo, base: base, stateDir: filepath.Join(base, "state"),
		kubectl: filepath.Join(repo, "_output", "cluster", "bin", "kubectl")}
	berthBin := filepath.Join(base, "bin", "berth")
	env.env = []string{
		"BERTH_MN_BRIDGE=" + bridge, "BERTH_MN_NET=" + nodeNet, "BERTH_MN_CLUSTER_CIDR=" + clusterCIDR,
		"BERTH_MN_NODE_PREFIX=" + nodePrefix, "BERTH_BIN=" + berthBin,
	}
	ports, err := freePorts(len(portVars))
	if err != nil {
		return nil, err
	}
	for i, v := range portVars {
		env.env = append(env.env, fmt.Sprintf("%s=%d", v, ports[i]))
	}

	// A previous run that could not clean up leaves its state dir.
	if _, err := os.Stat(env.stateDir); err == nil {
		if out, err := env.script("down"); err != nil {
			return nil, fmt.Errorf("stop the previous run's cluster: %w\n%s", err, out)
		}
		if err := os.RemoveAll(env.stateDir); err != nil {
			return nil, err
		}
	}
	// containerd's socket path is limited to 107 bytes: a long checkout
	// path puts the state dir under $TMPDIR (the watchdog still removes it).
	if len(filepath.Join(env.stateDir, "nodes", nodeName(nodeCount), "containerd", "containerd.sock.ttrpc")) >= 104 {
		if env.stateDir, err = os.MkdirTemp("", "berth-e2e-mn-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(env.stateDir, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	build := exec.Command("go", "build", "-o", berthBin, "./cmd/berth")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build berth: %w\n%s", err, out)
	}
	for _, script := range [][]string{{"cluster.sh", "build"}, {"addons.sh", "build"}} {
		cmd := exec.Command(filepath.Join(repo, "hack", script[0]), script[1])
		cmd.Dir, cmd.Stdout, cmd.Stderr = repo, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("hack/%s %s: %w", script[0], script[1], err)
		}
	}
	logf("berth, the control plane and the add-ons built (or cached) in %s", since(start))

	if err := env.startWatchdog(); err != nil {
		return env, err
	}
	start = time.Now()
	if out, err := env.script("up", strconv.Itoa(nodeCount)); err != nil {
		return env, fmt.Errorf("hack/multinode.sh up: %w\n%s", err, out)
	}
	env.upTime = time.Since(start)
	logf("%d nodes and the add-ons up in %s", nodeCount, since(start))

	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(env.stateDir, "admin.kubeconfig"))
	if err != nil {
		return env, err
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = 50, 100, 10*time.Second
	if env.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return env, err
	}
	return env, nil
}

// script runs hack/multinode.sh CMD [ARG] STATE_DIR.
func (env *environment) script(cmdName string, args ...string) ([]byte, error) {
	args = append(append([]string{cmdName}, args...), env.stateDir)
	cmd := exec.Command(filepath.Join(env.repo, "hack", "multinode.sh"), args...)
	cmd.Dir = env.repo
	cmd.Env = append(os.Environ(), env.env...)
	return cmd.CombinedOutput()
}

// tearDown removes the cluster and checks that nothing of it is left: no
// namespace, no bridge. The state dir stays after a failure.
func (env *environment) tearDown(passed bool) error {
	env.saveArtifacts()
	out, err := env.script("down")
	if err != nil {
		return fmt.Errorf("hack/multinode.sh down: %w\n%s", err, out)
	}
	var errs []error
	if _, err := net.InterfaceByName(bridge); err == nil {
		errs = append(errs, fmt.Errorf("bridge %s remains", bridge))
	}
	for i := 1; i <= nodeCount; i++ {
		if _, err := os.Stat(fmt.Sprintf("/run/netns/%s-%d", nodePrefix, i)); err == nil {
			errs = append(errs, fmt.Errorf("network namespace %s-%d remains", nodePrefix, i))
		}
	}
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(mounts, []byte(env.stateDir+"/")) {
		errs = append(errs, fmt.Errorf("mounts under %s remain", env.stateDir))
	}
	if len(errs) == 0 && passed {
		errs = append(errs, os.RemoveAll(env.stateDir), os.RemoveAll(env.base))
	}
	return errors.Join(errs...)
}

func (env *environment) saveArtifacts() {
	dir := os.Getenv("BERTH_E2E_ARTIFACTS")
	if dir == "" {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(env.stateDir, "*.log"))
	more, _ := filepath.Glob(filepath.Join(env.stateDir, "nodes", "*", "*.log"))
	dst := filepath.Join(dir, "multinode-e2e")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	for _, l := range append(logs, more...) {
		if data, err := os.ReadFile(l); err == nil {
			name := strings.ReplaceAll(strings.TrimPrefix(l, env.stateDir+"/"), "/", "_")
			_ = os.WriteFile(filepath.Join(dst, name), data, 0o644)
		}
	}
}

// startWatchdog removes the cluster once this process is gone if
// tearDown has not: a panic, a test timeout, a signal.
func (env *environment) startWatchdog() error {
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -f "$3/multinode.env" ]; then "$2/hack/multinode.sh" down "$3" >"$3.watchdog.log" 2>&1; fi`
	cmd := exec.Command("sh", "-c", script, "watchdog", strconv.Itoa(os.Getpid()), env.repo, env.stateDir)
	cmd.Env = append(os.Environ(), env.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	return cmd.Process.Release()
}

func requireSuite(t *testing.T) *environment {
	t.Helper()
	if suite == nil {
		t.Skip("multi-node e2e tests run only with BERTH_E2E=1 (make test-cluster): they need root, containerd and the control plane binaries")
	}
	return suite
}

// kubectlRun runs the cluster's kubectl as admin.
func (env *environment) kubectlRun(ctx context.Context, args ...string) (string, error) {
	args = append([]string{"--kubeconfig", filepath.Join(env.stateDir, "admin.kubeconfig")}, args...)
	out, err := exec.CommandContext(ctx, env.kubectl, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args[2:], " "), err, out)
	}
	return string(out), nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "multinode-e2e: "+format+"\n", args...)
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
