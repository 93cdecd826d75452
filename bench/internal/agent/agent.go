// Package agent runs a kubelet — berth or the upstream kubelet — as a child
// process for the benchmark, with one KubeletConfiguration shared by both,
// and reads its footprint from /proc.
package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// Config is what an agent needs to join the bench cluster as NodeName.
type Config struct {
	Name   string // "berth" or "upstream": also the name of its directory
	Binary string
	// Dir holds the agent's config.yaml, root/ and pod-logs/. It is
	// emptied at every start, so a run never sees another's state.
	Dir             string
	NodeName        string
	Kubeconfig      string // the node's kubeconfig (system:node:NodeName)
	RuntimeEndpoint string // unix://...
	ClientCAFile    string // CA that signs clients of the kubelet API
	Port            int32  // kubelet API (https)
	HealthzPort     int32
	MaxPods         int32
	// CgroupRoot is where the upstream kubelet puts its pod cgroups
	// (cgroupRoot); berth does not act on the field yet. It must not be
	// the root that other kubelets on this machine use: the upstream
	// kubelet kills every process in pod cgroups it does not know.
	CgroupRoot string
	Verbosity  int
	// LogFile receives the agent's output; it is kept outside Dir so that
	// every session's log survives the next start.
	LogFile string
}

// configTemplate is the KubeletConfiguration both agents run with. Fields
// berth does not act on yet are reported by it once at start-up and
// ignored; they are here because the upstream kubelet needs them on this
// machine (see docs/benchmarks.md).
var configTemplate = template.Must(template.New("config").Parse(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: {{.RuntimeEndpoint}}
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: {{.CgroupRoot}}
enforceNodeAllocatable: []
failSwapOn: false
failCgroupV1: false
address: 127.0.0.1
port: {{.Port}}
healthzBindAddress: 127.0.0.1
healthzPort: {{.HealthzPort}}
readOnlyPort: 0
podLogsDir: {{.Dir}}/pod-logs
clusterDomain: cluster.local
maxPods: {{.MaxPods}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
enableProfilingHandler: true
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {{.ClientCAFile}}
authorization:
  mode: Webhook
`))

// ConfigYAML renders the agent's KubeletConfiguration.
func (c Config) ConfigYAML() ([]byte, error) {
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Args is the agent's command line.
func (c Config) Args() []string {
	return []string{
		"--config", filepath.Join(c.Dir, "config.yaml"),
		"--kubeconfig", c.Kubeconfig,
		"--hostname-override", c.NodeName,
		"--root-dir", filepath.Join(c.Dir, "root"),
		fmt.Sprintf("--v=%d", c.Verbosity),
	}
}

// Process is a running agent.
type Process struct {
	cfg     Config
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}
}

// Start writes the agent's configuration into a fresh Dir and starts it.
// The process dies with the benchmark (Pdeathsig), so an interrupted run
// leaves no kubelet behind.
func Start(c Config) (*Process, error) {
	if err := os.RemoveAll(c.Dir); err != nil {
		return nil, fmt.Errorf("clean %s: %w", c.Dir, err)
	}
	for _, d := range []string{c.Dir, filepath.Join(c.Dir, "root"), filepath.Join(c.Dir, "pod-logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	yaml, err := c.ConfigYAML()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "config.yaml"), yaml, 0o644); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(c.LogFile), 0o755); err != nil {
		return nil, err
	}
	log, err := os.Create(c.LogFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Binary, c.Args()...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	p := &Process{cfg: c, cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the agent's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Started is when the process was started.
func (p *Process) Started() time.Time { return p.started }

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Stop sends SIGTERM and, after grace, SIGKILL; it returns when the
// process is gone. Pods stay in the runtime: the caller removes them.
func (p *Process) Stop(ctx context.Context, grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	case <-ctx.Done():
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// LogTail returns the last n lines of the agent's log.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.cfg.LogFile)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
