package kubeadm

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The node's own network: a veth pair inside its network namespace gives it
// an address and a default route, as a machine's NIC would (kubeadm takes
// the default route's address as the node's, and refuses a loopback one).
// Both ends stay in the namespace: nothing leaves it. 192.0.2.0/24 is
// TEST-NET-1, never routed.
const (
	nodeIP   = "192.0.2.10"
	nodeCIDR = nodeIP + "/24"
	gateway  = "192.0.2.1"
)

// The paths kubeadm and the kubelet use, each bind-mounted in the node's
// mount namespace from a directory of the test's base.
var nodeMounts = []struct{ target, source string }{
	{"/etc/kubernetes", "etc-kubernetes"},
	{"/var/lib/kubelet", "var-lib-kubelet"},
	{"/var/lib/etcd", "var-lib-etcd"},
	{"/etc/hosts", "hosts"},
}

// node is a machine of its own for kubeadm: mount, network and UTS
// namespaces held by a shell that also cleans up after the test binary if
// it dies before tearDown (a panic, a timeout). Everything of the node runs
// inside through nsenter: the control plane, containerd, kubeletunit with
// berth, kubeadm.
type node struct {
	name   string
	base   string
	repo   string
	holder *exec.Cmd
	stdin  io.WriteCloser // its end of the holder's stdin: closing it ends the holder
	netns  *os.File       // the node's network namespace, for dialing into it
}

// nodeScript sets the namespaces up, says "ready", then waits until its
// stdin closes (tearDown, or the test binary's death) and stops what the
// cluster state dir ($1) names (a no-op after a clean tearDown).
const nodeScript = `set -e
state="$1" repo="$2" name="$3" base="$4"
mount --make-rprivate /
for m in ` + "$MOUNTS" + `; do mount --bind "$base/${m#*=}" "${m%%=*}"; done
hostname "$name"
ip link set lo up
ip link add node0 type veth peer name node0-peer
ip link set node0-peer up
ip addr add "$NODE_CIDR" dev node0
ip link set node0 up
ip route add default via "$GATEWAY" dev node0
sysctl -qw net.ipv4.ip_forward=1
echo ready
set +e
while read -r _; do :; done
if [ -d "$state" ]; then "$repo/hack/cluster.sh" down "$state" >"$base/node-cleanup.log" 2>&1; fi
`

// startNode creates the node's directories under base and starts its
// namespaces. stateDir is hack/cluster.sh's STATE_DIR of the node's cluster.
func startNode(repo, base, name, stateDir string) (*node, error) {
	var mounts []string
	for _, m := range nodeMounts {
		src := filepath.Join(base, m.source)
		if m.source == "hosts" {
			hosts, err := os.ReadFile("/etc/hosts")
			if err != nil {
				return nil, err
			}
			// The apiserver reaches the kubelet by the node's name.
			hosts = append(hosts, []byte(fmt.Sprintf("\n127.0.0.1 %s\n", name))...)
			if err := os.WriteFile(src, hosts, 0o644); err != nil {
				return nil, err
			}
		} else {
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, err
			}
			// A mount point must exist: an empty directory on the host.
			if err := os.MkdirAll(m.target, 0o755); err != nil {
				return nil, err
			}
		}
		mounts = append(mounts, m.target+"="+m.source)
	}
	cmd := exec.Command("unshare", "--mount", "--net", "--uts", "--propagation", "private",
		"sh", "-c", nodeScript, "node", stateDir, repo, name, base)
	cmd.Env = append(os.Environ(), "MOUNTS="+strings.Join(mounts, " "), "NODE_CIDR="+nodeCIDR, "GATEWAY="+gateway)
	// Not in the test's process group: it must outlive a ^C to clean up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(base, "node.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the node's namespaces: %w", err)
	}
	n := &node{name: name, base: base, repo: repo, holder: cmd, stdin: stdin}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = fmt.Errorf("not ready within 30s")
	}
	if err != nil {
		n.stop()
		log, _ := os.ReadFile(filepath.Join(base, "node.log"))
		return nil, fmt.Errorf("set up the node's namespaces: %w\n%s", err, log)
	}
	if n.netns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

// stop ends the holder, which stops whatever of the cluster still runs;
// the namespaces go with the last process in them.
func (n *node) stop() {
	if n.netns != nil {
		n.netns.Close()
	}
	n.stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = n.holder.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		_ = n.holder.Process.Kill()
		<-done
	}
}

// command runs name inside the node, in the repository's directory.
func (n *node) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	nsArgs := []string{"--target", strconv.Itoa(n.holder.Process.Pid), "--mount", "--net", "--uts", "--wd=" + n.repo, "--", name}
	return exec.CommandContext(ctx, "nsenter", append(nsArgs, args...)...)
}

// run runs name inside the node and returns its combined output.
func (n *node) run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := n.command(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// dial opens a connection from inside the node's network namespace, where
// the API server listens on 127.0.0.1. The socket is made on a thread
// switched into the namespace; a thread that cannot switch back is dropped.
func (n *node) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(n.netns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("enter the node's network namespace: %w", err)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}
