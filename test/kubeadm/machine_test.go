package kubeadm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// machine is one node of its own (namespaces, node_test.go) with a
// containerd and the kubelet service (kubeletunit with berth), and for the
// join test the control plane of hack/cluster.sh too.
type machine struct {
	name      string
	repo      string
	binDir    string // berth, kubeletunit; path/ has berth as `kubelet`
	clusterBn string
	stateDir  string // hack/cluster.sh's STATE_DIR, containerd's in stateDir/containerd
	node      *node
	unit      *exec.Cmd
}

// startMachine makes machine name under dir (its mount sources and state)
// and starts containerd, with controlPlane the hack/cluster.sh control
// plane (on the node's default ports: its network namespace is its own),
// and the kubelet service.
func (env *environment) startMachine(dir, name string, controlPlane bool) (*machine, error) {
	m := &machine{name: name, repo: env.repo, binDir: env.base, clusterBn: env.clusterBn, stateDir: filepath.Join(dir, "cluster")}
	if err := os.MkdirAll(m.stateDir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if m.node, err = startNode(env.repo, dir, name, m.stateDir); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var clusterErr, ctrdErr error
	if controlPlane {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, clusterErr = m.node.run(ctx, []string{"BERTH_NODE_NAME=" + name,
				// The API server verifies the kubelet's serving certificate.
				"BERTH_APISERVER_FLAGS=--kubelet-certificate-authority=" + filepath.Join(m.stateDir, "pki", "ca.crt")},
				filepath.Join(env.repo, "hack", "cluster.sh"), "up", m.stateDir)
		}()
	}
	_, ctrdErr = m.node.run(ctx, nil, filepath.Join(env.repo, "hack", "containerd.sh"), "up", m.containerdDir())
	wg.Wait()
	if err := errors.Join(clusterErr, ctrdErr); err != nil {
		return m, err
	}
	return m, m.startUnit()
}

func (m *machine) containerdDir() string { return filepath.Join(m.stateDir, "containerd") }

// criSocket is containerd's socket, kubeadm's --cri-socket.
func (m *machine) criSocket() string {
	return "unix://" + filepath.Join(m.containerdDir(), "containerd.sock")
}

func (m *machine) kubeletLog() string { return filepath.Join(m.stateDir, "kubelet.log") }

// startUnit starts the node's kubelet service as the packages install it:
// kubeletunit with the unit and kubeadm's drop-in, berth in place of
// /usr/bin/kubelet. It crash-loops until kubeadm has written the kubelet's
// configuration, as on a real node.
func (m *machine) startUnit() error {
	unitDir := filepath.Join(m.repo, "hack", "kubeadm")
	cmd := m.node.command(context.Background(), filepath.Join(m.binDir, "bin", "kubeletunit"),
		"-unit", filepath.Join(unitDir, "kubelet.service"),
		"-unit", filepath.Join(unitDir, "10-kubeadm.conf"),
		"-exec", "/usr/bin/kubelet="+filepath.Join(m.binDir, "bin", "berth"),
		"-log", m.kubeletLog(),
		"-pid-file", filepath.Join(m.stateDir, "berth.pid"))
	// nsenter execs kubeletunit: this is its process, and it (and so
	// berth) dies with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kubeletunit: %w", err)
	}
	m.unit = cmd
	// hack/cluster.sh down stops it by this file, before berth.
	return os.WriteFile(filepath.Join(m.stateDir, "kubeletunit.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
}

// kubeadm runs the node's kubeadm with berth as `kubelet` on PATH.
func (m *machine) kubeadm(ctx context.Context, args ...string) (string, error) {
	path := "PATH=" + filepath.Join(m.binDir, "path") + ":" + os.Getenv("PATH")
	return m.node.run(ctx, []string{path}, filepath.Join(m.clusterBn, "kubeadm"), args...)
}

// stop stops kubeletunit and berth, containerd and the control plane
// (inside the node, where containerd's mounts are), then the node.
func (m *machine) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := m.node.run(ctx, nil, filepath.Join(m.repo, "hack", "cluster.sh"), "down", m.stateDir)
	if m.unit != nil {
		_ = m.unit.Wait()
	}
	m.node.stop()
	return err
}
