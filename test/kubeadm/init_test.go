package kubeadm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// initNodeName is the machine kubeadm init makes a control plane of.
const initNodeName = "kubeadm-init"

// controlPlaneImages are the images kubeadm v1.37.2 runs its static pods
// from (`kubeadm config images list`), built here from the binaries of
// `hack/cluster.sh build`, statically linked: binary name → image.
var controlPlaneImages = []struct{ binary, image string }{
	{"kube-apiserver", "registry.k8s.io/kube-apiserver:v1.37.2"},
	{"kube-controller-manager", "registry.k8s.io/kube-controller-manager:v1.37.2"},
	{"kube-scheduler", "registry.k8s.io/kube-scheduler:v1.37.2"},
	{"etcd", "registry.k8s.io/etcd:3.7.0-0"},
}

// initConfig: images built locally and never pulled; the kubelet as in the
// join test (clusterConfig).
const initConfig = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  criSocket: %s
  imagePullPolicy: Never
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
`

// initPreflightIgnored as joinPreflightIgnored: SystemVerification fails
// on this cgroup v1 host.
var initPreflightIgnored = []string{"SystemVerification"}

// TestKubeadmInit runs `kubeadm init` on a machine of its own, berth as its
// kubelet: berth runs etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler as static pods from kubeadm's manifests, init completes,
// and a pod then runs on the node.
func TestKubeadmInit(t *testing.T) {
	env := requireSuite(t)
	ctx := ctxFor(t, 15*time.Minute)
	dir := filepath.Join(env.base, "init")
	m, err := env.startMachine(dir, initNodeName, false)
	if m != nil {
		t.Cleanup(func() {
			if err := m.stop(); err != nil {
				t.Errorf("stop %s: %v", initNodeName, err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's kubelet log:\n%s", initNodeName, tail(m.kubeletLog(), 0, 200))
		}
	})
	if err := env.importControlPlaneImages(ctx, m, dir); err != nil {
		t.Fatal(err)
	}

	cfgPath := filepath.Join(dir, "kubeadm-init.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(initConfig, m.criSocket())), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := m.kubeadm(ctx, "init", "--config="+cfgPath, "--skip-phases=addon/kube-proxy,addon/coredns",
		"--ignore-preflight-errors="+strings.Join(initPreflightIgnored, ","))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Your Kubernetes control-plane has initialized successfully") {
		t.Fatalf("kubeadm init succeeded without saying so:\n%s", out)
	}
	t.Logf("kubeadm init done in %s", since(start))

	kube, err := m.client(filepath.Join(dir, "etc-kubernetes", "admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() (bool, string) {
		return nodeReadyIn(ctx, kube, initNodeName)
	})
	// The control plane's static pods, as their mirror pods tell.
	for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		name := c + "-" + initNodeName
		eventually(t, 60*time.Second, func() (bool, string) {
			p, err := kube.CoreV1().Pods("kube-system").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return p.Status.Phase == v1.PodRunning, fmt.Sprintf("%s: %s", name, p.Status.Phase)
		})
	}

	// A pod on the control-plane node, which kubeadm tainted.
	ns := namespaceIn(t, kube, "kubeadm-init")
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "after-init"},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{
				Name: "c", Image: "berth.local/busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent,
				Command: []string{"sleep", "3600"},
			}},
			Tolerations:                   []v1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}},
			TerminationGracePeriodSeconds: new(int64),
		},
	}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == v1.PodRunning && p.Spec.NodeName == initNodeName,
			fmt.Sprintf("phase %s on %q, conditions %v", p.Status.Phase, p.Spec.NodeName, p.Status.Conditions)
	})
}

// importControlPlaneImages builds the control plane's images with
// tools/mkimage and imports them into m's containerd, with the pause image
// also under the tag kubeadm v1.37.2 names (3.10.2).
func (env *environment) importControlPlaneImages(ctx context.Context, m *machine, dir string) error {
	mkimage := filepath.Join(env.repo, "_output", "images", "bin", "mkimage")
	imagesDir := filepath.Join(dir, "images")
	if err := os.MkdirAll(imagesDir, 0o755); err != nil {
		return err
	}
	sock := filepath.Join(m.containerdDir(), "containerd.sock")
	for _, img := range controlPlaneImages {
		archive := filepath.Join(imagesDir, img.binary+".tar")
		build := exec.CommandContext(ctx, mkimage, "-o", archive, "-name", img.image,
			"-file", filepath.Join(env.clusterBn, img.binary)+":/usr/local/bin/"+img.binary+":0755",
			"-env", "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("mkimage %s: %w\n%s", img.image, err, out)
		}
		if _, err := m.node.run(ctx, nil, "ctr", "--address", sock, "-n", "k8s.io", "images", "import", archive); err != nil {
			return err
		}
	}
	_, err := m.node.run(ctx, nil, "ctr", "--address", sock, "-n", "k8s.io", "images", "tag", "--force",
		"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.2")
	return err
}

// client is an API client from kubeconfig that dials into m's network.
func (m *machine) client(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = 100, 200, 10*time.Second
	cfg.Dial = m.node.dial
	return kubernetes.NewForConfig(cfg)
}
