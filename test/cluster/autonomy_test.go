package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestNodeAutonomyReboot: with --node-autonomy, a node that reboots while
// the API server cannot be reached runs its API pods again from the
// checkpoint, with their ConfigMap, Secret and token volumes; when the API
// server is back, a pod deleted and a pod changed meanwhile are stopped and
// updated, without a pod running twice.
//
// berth reaches the API server through a proxy of the test's: closing it
// makes the API server unreachable for berth only, so the test can delete
// and change pods "while the node is cut off", as an operator would.
func TestNodeAutonomyReboot(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.ensureBerthRuns(t)
	proxy := env.newAPIProxy(t)
	env.restartBerthWith(t, "", "--node-autonomy", "--node-autonomy-api-wait=3s", "--kubeconfig", env.proxyKubeconfig(t, proxy.addr()))

	env.createConfigMap(t, ns, "conf", map[string]string{"greeting": "hello"})
	env.createSecret(t, ns, "creds", map[string]string{"password": "s3cret"})
	mounts := func(p *v1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes,
			configMapVolume("conf", "conf"),
			v1.Volume{Name: "creds", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds"}}})
		c := &p.Spec.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, v1.VolumeMount{Name: "conf", MountPath: "/etc/conf"}, v1.VolumeMount{Name: "creds", MountPath: "/etc/creds"})
	}
	keeper := env.createPod(t, ns, sleeper("keeper", withGrace(1), mounts))
	doomed := env.createPod(t, ns, sleeper("doomed", withGrace(1)))
	changed := env.createPod(t, ns, sleeper("changed", withGrace(1)))
	for _, name := range []string{"keeper", "doomed", "changed"} {
		env.waitReady(t, ns, name, 1, 60*time.Second)
	}

	// Every pod is checkpointed, the Secret and the token sealed.
	checkpoint := filepath.Join(env.nodeDir, "root", "autonomy")
	env.eventually(t, 10*time.Second, func() (bool, string) {
		for _, p := range []*v1.Pod{keeper, doomed, changed} {
			if _, err := os.Stat(filepath.Join(checkpoint, "pods", string(p.UID), "pod.json")); err != nil {
				return false, err.Error()
			}
		}
		tokens, _ := filepath.Glob(filepath.Join(checkpoint, "pods", string(keeper.UID), "token-*"))
		for _, f := range []string{filepath.Join("secrets", ns, "creds"), filepath.Join("configmaps", ns, "conf.json")} {
			if _, err := os.Stat(filepath.Join(checkpoint, f)); err != nil {
				return false, err.Error()
			}
		}
		return len(tokens) > 0, fmt.Sprintf("tokens of keeper: %v", tokens)
	})
	if b, err := os.ReadFile(filepath.Join(checkpoint, "secrets", ns, "creds")); err != nil || strings.Contains(string(b), "s3cret") {
		t.Fatalf("the Secret's checkpoint holds it in the clear (or is unreadable: %v)", err)
	}

	// The reboot, with the API server out of reach.
	proxy.setUp(false)
	env.simulateReboot(t)
	start := time.Now()
	if err := env.berth.start(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*v1.Pod{keeper, doomed, changed} {
		env.eventually(t, 60*time.Second, env.runsOnce(p.UID))
	}
	t.Logf("after the reboot, the 3 pods run again from the checkpoint %s after berth started (API wait 3 s)", since(start))
	id := env.runningContainer(t, keeper.UID)
	for file, want := range map[string]string{"/etc/conf/greeting": "hello", "/etc/creds/password": "s3cret"} {
		if got, err := env.exec(id, "cat", file); err != nil || got != want {
			t.Errorf("offline, %s in keeper = %q, %v; want %q", file, got, err, want)
		}
	}
	if tok, err := env.exec(id, "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"); err != nil || len(tok) < 20 {
		t.Errorf("offline, keeper's service account token = %q, %v", tok, err)
	}

	changedHash := env.containerHash(t, changed.UID)

	// Meanwhile, through the API: one pod deleted, one changed, the
	// ConfigMap changed.
	env.deletePod(t, doomed)
	ctx, cancel := apiContext()
	defer cancel()
	newImage := env.tagImage(t, busybox, "berth.local/busybox:autonomy")
	patch := fmt.Sprintf(`{"spec":{"containers":[{"name":"main","image":%q}]}}`, newImage)
	if _, err := env.kube.CoreV1().Pods(ns).Patch(ctx, "changed", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.kube.CoreV1().ConfigMaps(ns).Patch(ctx, "conf", types.MergePatchType, []byte(`{"data":{"greeting":"bye"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// Still cut off, berth keeps running what it has.
	if ok, msg := env.runsOnce(doomed.UID)(); !ok {
		t.Fatalf("while cut off, the pod deleted through the API no longer runs as before: %s", msg)
	}

	back := time.Now()
	proxy.setUp(true)
	env.eventually(t, 30*time.Second, env.noContainers(doomed.UID, false))
	env.eventually(t, 30*time.Second, env.podGone(ns, "doomed"))
	t.Logf("pod deleted while cut off: stopped and gone from the API %s after the API server was back", since(back))
	// The runtime reports an image by its first name (both names are one
	// image here), so the new spec shows in the container's hash.
	env.eventually(t, 30*time.Second, func() (bool, string) {
		if ok, msg := env.runsOnce(changed.UID)(); !ok {
			return false, msg
		}
		hash := env.containerHash(t, changed.UID)
		return hash != changedHash, fmt.Sprintf("the running container's spec hash is still %s", hash)
	})
	env.eventually(t, 30*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, "changed")
		if err != nil || p == nil {
			return false, fmt.Sprintf("changed: %v", err)
		}
		cs := containerStatus(p, "main")
		return podReady(p) && cs != nil && strings.HasSuffix(cs.ContainerID, "://"+env.runningContainer(t, changed.UID)), describePod(p)
	})
	t.Logf("pod changed while cut off: runs its new image %s after the API server was back", since(back))
	env.eventually(t, 30*time.Second, func() (bool, string) {
		got, err := env.exec(env.runningContainer(t, keeper.UID), "cat", "/etc/conf/greeting")
		return err == nil && got == "bye", fmt.Sprintf("greeting %q, %v", got, err)
	})
	// The status is caught up: the API reports the containers that run now.
	env.eventually(t, 30*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, "keeper")
		if err != nil || p == nil {
			return false, fmt.Sprintf("keeper: %v", err)
		}
		cs := containerStatus(p, "main")
		want := env.runningContainer(t, keeper.UID)
		return podReady(p) && cs != nil && strings.HasSuffix(cs.ContainerID, "://"+want), describePod(p)
	})
	t.Logf("status caught up %s after the API server was back", since(back))
	if ok, msg := env.runsOnce(keeper.UID)(); !ok {
		t.Fatal(msg)
	}
	// Reconciling restarted nothing that had not changed.
	if now := env.runningContainer(t, keeper.UID); now != id {
		t.Errorf("keeper's container %s was replaced by %s when the API server came back", shortID(id), shortID(now))
	}
	env.eventually(t, 10*time.Second, func() (bool, string) {
		_, err := os.Stat(filepath.Join(checkpoint, "pods", string(doomed.UID)))
		return errors.Is(err, os.ErrNotExist), fmt.Sprintf("checkpoint of the deleted pod: %v", err)
	})
}

// tagImage gives the local image another name (the same content), so that
// a pod can be changed to "another" image.
func (env *environment) tagImage(t *testing.T, image, tag string) string {
	t.Helper()
	sock := filepath.Join(env.ctrdDir, "containerd.sock")
	_ = exec.Command("ctr", "--address", sock, "-n", "k8s.io", "images", "rm", tag).Run()
	if out, err := exec.Command("ctr", "--address", sock, "-n", "k8s.io", "images", "tag", image, tag).CombinedOutput(); err != nil {
		t.Fatalf("ctr images tag %s %s: %v\n%s", image, tag, err, out)
	}
	return tag
}

// runsOnce is a condition: the pod has exactly one sandbox, ready, and
// each of its containers runs in one instance.
func (env *environment) runsOnce(uid types.UID) func() (bool, string) {
	return func() (bool, string) {
		ctx, cancel := criContext()
		defer cancel()
		sbs, err := env.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodUID: string(uid)}})
		if err != nil {
			return false, err.Error()
		}
		cs, err := env.podContainers(uid)
		if err != nil {
			return false, err.Error()
		}
		running := runningOnly(cs)
		ready := 0
		for _, s := range sbs {
			if s.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				ready++
			}
		}
		return len(sbs) == 1 && ready == 1 && len(running) == 1,
			fmt.Sprintf("pod %s: %d sandboxes (%d ready), containers %s", uid, len(sbs), ready, describeContainers(cs))
	}
}

// containerHash is the spec hash label of the pod's running container.
func (env *environment) containerHash(t *testing.T, uid types.UID) string {
	t.Helper()
	cs, err := env.podContainers(uid)
	if err != nil {
		t.Fatal(err)
	}
	running := runningOnly(cs)
	if len(running) != 1 {
		t.Fatalf("pod %s: %s; want one running container", uid, describeContainers(cs))
	}
	hash := running[0].Annotations["io.kubernetes.container.hash"]
	if hash == "" {
		t.Fatalf("pod %s: container %s has no spec hash annotation", uid, shortID(running[0].Id))
	}
	return hash
}

// runningContainer is the ID of the pod's one running container.
func (env *environment) runningContainer(t *testing.T, uid types.UID) string {
	t.Helper()
	cs, err := env.podContainers(uid)
	if err != nil {
		t.Fatal(err)
	}
	running := runningOnly(cs)
	if len(running) != 1 {
		t.Fatalf("pod %s: %s; want one running container", uid, describeContainers(cs))
	}
	return running[0].Id
}

// simulateReboot does to the node what a reboot does: berth and
// containerd stop, every container and sandbox is gone, and so are the
// pods' cgroups and mounts (tmpfs volumes lose their files). Then
// containerd starts again; berth is left to the caller.
func (env *environment) simulateReboot(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := env.berth.stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sbs, err := env.rt.ListPodSandbox(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sbs {
		if err := env.rt.StopPodSandbox(ctx, s.Id); err != nil {
			t.Fatalf("stop sandbox %s: %v", s.GetMetadata().GetName(), err)
		}
		if err := env.rt.RemovePodSandbox(ctx, s.Id); err != nil {
			t.Fatalf("remove sandbox %s: %v", s.GetMetadata().GetName(), err)
		}
	}
	if out, err := env.containerdScript("down"); err != nil {
		t.Fatalf("hack/containerd.sh down: %v\n%s", err, out)
	}
	mounts, err := hostMountsUnder(filepath.Join(env.nodeDir, "root", "pods"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(mounts) // the deepest first
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Fatalf("unmount %s: %v", m, err)
		}
	}
	for _, s := range sbs {
		removePodCgroups(t, s.GetMetadata().GetUid())
	}
	cmd := env.containerdScriptCmd("up")
	cmd.Env = append(os.Environ(), "BERTH_SKIP_IMAGES=1") // the images survive a reboot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/containerd.sh up: %v\n%s", err, out)
	}
	t.Logf("simulated reboot: %d sandboxes, %d mounts and their cgroups removed, containerd restarted in %s", len(sbs), len(mounts), since(start))
}

// removePodCgroups removes the cgroups of pod uid in every hierarchy,
// innermost first.
func removePodCgroups(t *testing.T, uid string) {
	t.Helper()
	var dirs []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/kubepods/pod" + uid, "/sys/fs/cgroup/*/kubepods/*/pod" + uid,
		"/sys/fs/cgroup/kubepods/pod" + uid, "/sys/fs/cgroup/kubepods/*/pod" + uid} {
		found, _ := filepath.Glob(pattern)
		dirs = append(dirs, found...)
	}
	for _, top := range dirs {
		var all []string
		_ = filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				all = append(all, path)
			}
			return nil
		})
		slices.Reverse(all)
		for _, d := range all {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("remove cgroup %s: %v", d, err)
			}
		}
	}
}

// apiProxy forwards TCP connections to the API server while up; down, it
// refuses new ones and cuts those open.
type apiProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	up    bool
	conns map[net.Conn]struct{}
}

func (env *environment) newAPIProxy(t *testing.T) *apiProxy {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(filepath.Join(env.stateDir, "node.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	var target string
	for _, c := range cfg.Clusters {
		target = strings.TrimPrefix(c.Server, "https://")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &apiProxy{ln: ln, target: target, up: true, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setUp(false) })
	return p
}

func (p *apiProxy) addr() string { return p.ln.Addr().String() }

func (p *apiProxy) setUp(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = up
	if !up {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *apiProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *apiProxy) forward(c net.Conn) {
	p.mu.Lock()
	if !p.up {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if !p.up {
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(s, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, s); done <- struct{}{} }()
	<-done
	c.Close()
	s.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// proxyKubeconfig is berth's kubeconfig with the API server's address
// replaced by addr.
func (env *environment) proxyKubeconfig(t *testing.T, addr string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(filepath.Join(env.stateDir, "node.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + addr
	}
	path := filepath.Join(env.stateDir, "node-proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
