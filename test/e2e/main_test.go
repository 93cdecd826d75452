package e2e

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	criclient "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
)

// suite is what every test shares: the berth binary and one containerd.
// TestMain sets it once before any test runs and never changes it after; it
// stays nil when BERTH_E2E is unset, and then every test skips.
var suite *environment

type environment struct {
	repo     string // repository root
	tmp      string // removed when the package's tests end
	berthBin string
	stateDir string // hack/containerd.sh's STATE_DIR
	endpoint string // unix:// address of containerd's CRI socket
	rt       internalapi.RuntimeService
	img      internalapi.ImageManagerService
}

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_E2E") == "" {
		os.Exit(m.Run()) // each test skips itself
	}
	// The CRI client logs every failed call through klog; the tests report
	// what matters themselves, and an outage on purpose would flood the output.
	quietKlog()
	os.Exit(runSuite(m))
}

// runSuite sets up the shared environment, runs the tests and tears the
// environment down however the tests end. A panic in a test kills the
// process before deferred calls run, so a watchdog process also tears
// containerd down once this process is gone.
func runSuite(m *testing.M) (code int) {
	env, err := setUp()
	if env != nil {
		defer func() {
			if err := env.tearDown(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: tear down: %v\n", err)
				if code == 0 {
					code = 1
				}
			}
		}()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: set up: %v\n", err)
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
	tmp, err := makeTmp(repo)
	if err != nil {
		return nil, err
	}
	env := &environment{
		repo:     repo,
		tmp:      tmp,
		berthBin: filepath.Join(tmp, "berth"),
		stateDir: filepath.Join(tmp, "ctrd"),
	}
	env.endpoint = "unix://" + filepath.Join(env.stateDir, "containerd.sock")

	start := time.Now()
	build := exec.Command("go", "build", "-o", env.berthBin, "./cmd/berth")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return env, fmt.Errorf("build berth: %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "e2e: built berth in %s\n", time.Since(start).Round(time.Millisecond))

	if err := env.startWatchdog(); err != nil {
		return env, err
	}
	start = time.Now()
	if out, err := env.containerdScript("up"); err != nil {
		return env, fmt.Errorf("hack/containerd.sh up: %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "e2e: containerd up in %s (state %s)\n", time.Since(start).Round(time.Millisecond), env.stateDir)

	ctx := context.Background()
	env.rt, err = criclient.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(env.endpoint).
		WithConnectionTimeout(10 * time.Second).
		WithTracerProvider(nil).
		Build(ctx)
	if err != nil {
		return env, fmt.Errorf("CRI runtime client: %w", err)
	}
	env.img, err = criclient.NewRemoteImageServiceBuilder().
		WithEndpoint(env.endpoint).
		WithConnectionTimeout(10 * time.Second).
		WithTracerProvider(nil).
		Build(ctx)
	if err != nil {
		return env, fmt.Errorf("CRI image client: %w", err)
	}
	return env, nil
}

func (env *environment) tearDown() error {
	var errs []string
	if env.rt != nil {
		_ = env.rt.Close(context.Background())
	}
	if _, err := os.Stat(env.stateDir); err == nil {
		if out, err := env.containerdScript("down"); err != nil {
			errs = append(errs, fmt.Sprintf("hack/containerd.sh down: %v\n%s", err, out))
		}
	}
	// Leave everything for a look when containerd could not be stopped.
	if len(errs) == 0 {
		if err := os.RemoveAll(env.tmp); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// startWatchdog starts a detached shell that waits for this process to end
// and then stops containerd and removes tmp, if tearDown has not. It covers
// the ends that skip deferred calls: a panic in a test, a test timeout, a
// signal.
func (env *environment) startWatchdog() error {
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -d "$3" ]; then
	# Keep the log only when down failed.
	if [ ! -d "$3/ctrd" ] || "$2/hack/containerd.sh" down "$3/ctrd" >"$3.watchdog.log" 2>&1; then
		rm -f "$3.watchdog.log"
		rm -rf "$3"
	fi
fi`
	cmd := exec.Command("sh", "-c", script, "watchdog", strconv.Itoa(os.Getpid()), env.repo, env.tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	return cmd.Process.Release()
}

func (env *environment) containerdScript(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(env.repo, "hack", "containerd.sh"), append(args, env.stateDir)...)
	cmd.Dir = env.repo
	return cmd.CombinedOutput()
}

// makeTmp makes the run's directory under _output/e2e/, where `make
// teardown` looks for containerds left behind, or under the system's temp
// directory when that path would be too long for containerd's socket
// (107 bytes for STATE_DIR/containerd.sock.ttrpc).
func makeTmp(repo string) (string, error) {
	base := filepath.Join(repo, "_output", "e2e")
	const worst = len("/run-0123456789/ctrd/containerd.sock.ttrpc")
	if len(base)+worst < 100 {
		if err := os.MkdirAll(base, 0o755); err == nil {
			return os.MkdirTemp(base, "run-")
		}
	}
	return os.MkdirTemp("", "berth-e2e-")
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

// requireSuite skips the test when the e2e environment is not set up.
func requireSuite(t *testing.T) *environment {
	t.Helper()
	if suite == nil {
		t.Skip("e2e tests run only with BERTH_E2E=1 (make test-e2e): they need root and a real containerd")
	}
	return suite
}

// quietKlog sends klog's output nowhere: not to stderr, not to files.
func quietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		_ = fs.Set(name, value)
	}
	klog.SetOutput(io.Discard)
}
