package kubeadm

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// nodeName is the node's hostname (its UTS namespace) and so the name
// kubeadm registers it under.
const nodeName = "kubeadm-node"

// suite is what every test shares; nil when BERTH_E2E is unset.
var suite *environment

type environment struct {
	*machine  // the node that joins, with the control plane of hack/cluster.sh
	repo      string
	base      string // everything of the run: binaries, the machines' directories
	clusterBn string // _output/cluster/bin: kubeadm, kubectl, the control plane
	kube      kubernetes.Interface
}

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_E2E") == "" {
		os.Exit(m.Run()) // each test skips itself
	}
	quietKlog()
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) (code int) {
	env, err := setUp()
	if env != nil {
		defer func() {
			if err := env.tearDown(code == 0); err != nil {
				fmt.Fprintf(os.Stderr, "kubeadm-e2e: tear down: %v\n", err)
				if code == 0 {
					code = 1
				}
			}
		}()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubeadm-e2e: set up: %v\n", err)
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
	// Under $TMPDIR/berth-e2e-*, where .ci/run's safety net looks for
	// containerds, and short enough for containerd's socket paths.
	base, err := os.MkdirTemp("", "berth-e2e-kubeadm-")
	if err != nil {
		return nil, err
	}
	env := &environment{repo: repo, base: base, clusterBn: filepath.Join(repo, "_output", "cluster", "bin")}
	for _, b := range []struct{ out, pkg string }{{"bin/berth", "./cmd/berth"}, {"bin/kubeletunit", "./tools/kubeletunit"}} {
		build := exec.Command("go", "build", "-o", filepath.Join(base, b.out), b.pkg)
		build.Dir = repo
		if out, err := build.CombinedOutput(); err != nil {
			return env, fmt.Errorf("build %s: %w\n%s", b.pkg, err, out)
		}
	}
	// berth installed as the node's kubelet: kubeadm's preflight runs
	// `kubelet --version` from PATH.
	if err := os.MkdirAll(filepath.Join(base, "path"), 0o755); err != nil {
		return env, err
	}
	if err := os.Symlink(filepath.Join(base, "bin", "berth"), filepath.Join(base, "path", "kubelet")); err != nil {
		return env, err
	}
	start := time.Now()
	cb := exec.Command(filepath.Join(repo, "hack", "cluster.sh"), "build")
	cb.Dir, cb.Stdout, cb.Stderr = repo, os.Stderr, os.Stderr
	if err := cb.Run(); err != nil {
		return env, fmt.Errorf("hack/cluster.sh build: %w", err)
	}
	logf("control plane binaries and kubeadm ready in %s", since(start))

	start = time.Now()
	if env.machine, err = env.startMachine(base, nodeName, true); err != nil {
		return env, err
	}
	logf("control plane, containerd and kubeletunit up inside node %s in %s (base %s)", nodeName, since(start), base)
	return env, env.connect()
}

// connect builds the admin client; it dials into the node's network.
func (env *environment) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", env.adminKubeconfig())
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = 100, 200, 10*time.Second
	cfg.UserAgent = "berth-kubeadm-e2e"
	cfg.Dial = env.node.dial
	env.kube, err = kubernetes.NewForConfig(rest.CopyConfig(cfg))
	return err
}

func (env *environment) adminKubeconfig() string {
	return filepath.Join(env.stateDir, "admin.kubeconfig")
}

// tearDown stops the join machine; the base directory is removed after a
// clean run only.
func (env *environment) tearDown(passed bool) error {
	var err error
	if env.machine != nil {
		err = env.machine.stop()
	}
	env.saveArtifacts()
	if passed && err == nil {
		return os.RemoveAll(env.base)
	}
	logf("logs, state and etcd kept in %s", env.base)
	return err
}

// saveArtifacts copies the logs to $BERTH_E2E_ARTIFACTS/kubeadm-e2e.
func (env *environment) saveArtifacts() {
	dir := os.Getenv("BERTH_E2E_ARTIFACTS")
	if dir == "" {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(env.base, "*", "*.log"))
	more, _ := filepath.Glob(filepath.Join(env.base, "*", "*", "*.log"))
	logs = append(logs, more...)
	dst := filepath.Join(dir, "kubeadm-e2e")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		logf("save logs: %v", err)
		return
	}
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err == nil {
			name := strings.ReplaceAll(strings.TrimPrefix(l, env.base+"/"), "/", "-")
			err = os.WriteFile(filepath.Join(dst, name), data, 0o644)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			logf("save %s: %v", l, err)
		}
	}
}

// requireSuite skips t unless the suite is set up, and prints the
// kubelet's log of t's time when t fails.
func requireSuite(t *testing.T) *environment {
	t.Helper()
	env := suite
	if env == nil {
		t.Skip("kubeadm e2e tests run only with BERTH_E2E=1 (make test-cluster): they need root, containerd and the control plane binaries")
	}
	from := fileSize(env.kubeletLog())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubelet log (kubeletunit and berth) during %s:\n%s", t.Name(), tail(env.kubeletLog(), from, 150))
		}
	})
	return env
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

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kubeadm-e2e: "+format+"\n", args...)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// quietKlog sends client-go's klog output nowhere.
func quietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		_ = fs.Set(name, value)
	}
	klog.SetOutput(io.Discard)
}
