package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// csiDriverName is the test driver's name (tools/csihostpath).
const csiDriverName = "hostpath.csi.berth.dev"

// A CSI driver registered as node-driver-registrar registers one (a socket
// in plugins_registry) serves a pod's volumes end to end: the driver's
// NodeGetInfo reaches the CSINode and the Node; external-provisioner turns
// a claim into a PersistentVolume (CreateVolume); berth stages the volume
// on its global mount, publishes it into the pod (fsGroup applied: the
// CSIDriver's policy is File), serves a generic ephemeral volume (the
// claim the controller-manager makes for the pod) and an inline volume,
// and reports the volumes' usage in the Summary. When the pod goes, every
// volume is unpublished and unstaged; the claims' deletion deletes the
// volumes' data (DeleteVolume).
func TestCSIDriverVolumes(t *testing.T) {
	env := requireSuite(t)
	ctx := context.Background()
	root := filepath.Join(env.nodeDir, "root")
	data := filepath.Join(env.stateDir, "csi-data")
	socket := filepath.Join(root, "plugins", csiDriverName, "csi.sock")
	start := time.Now()

	// The driver and its CSIDriver object.
	env.createCSIDriver(t)
	env.startProcess(t, "csihostpath", env.buildTool(t, "csihostpath"),
		"--name", csiDriverName, "--endpoint", socket, "--registration-dir", filepath.Join(root, "plugins_registry"),
		"--data-dir", data, "--node-id", nodeName, "--max-volumes", "16",
		"--topology-key", "topology."+csiDriverName+"/node", "-v", "2")
	env.eventually(t, 30*time.Second, func() (bool, string) {
		cn, err := env.kube.StorageV1().CSINodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, d := range cn.Spec.Drivers {
			if d.Name == csiDriverName {
				ok := d.NodeID == nodeName && d.Allocatable != nil && *d.Allocatable.Count == 16 &&
					strings.Join(d.TopologyKeys, ",") == "topology."+csiDriverName+"/node"
				return ok, fmt.Sprintf("CSINode driver entry %+v", d)
			}
		}
		return false, fmt.Sprintf("CSINode drivers %+v", cn.Spec.Drivers)
	})
	node, err := env.kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := node.Annotations["csi.volume.kubernetes.io/nodeid"]; got != fmt.Sprintf(`{%q:%q}`, csiDriverName, nodeName) {
		t.Errorf("node ID annotation = %q", got)
	}
	if got := node.Labels["topology."+csiDriverName+"/node"]; got != nodeName {
		t.Errorf("topology label = %q", got)
	}
	t.Logf("driver registered, CSINode and Node updated in %s", since(start))

	// Dynamic provisioning.
	env.startProcess(t, "csi-provisioner", filepath.Join(env.repo, "_output", "cluster", "bin", "csi-provisioner"),
		"--csi-address", socket, "--kubeconfig", filepath.Join(env.stateDir, "admin.kubeconfig"),
		"--leader-election=false", "--timeout", "30s", "-v", "2")
	sc := env.createStorageClass(t)
	ns := env.namespace(t)
	claimSpec := v1.PersistentVolumeClaimSpec{
		AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
		StorageClassName: &sc,
		Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("64Mi")}},
	}
	if _, err := env.kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: claimSpec,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	fsGroup := int64(2345)
	pod := shellPod("csi", "echo persistent > /data/out && cat /inline/content > /data/inline && echo eph > /eph/out && "+
		"stat -c %g /data > /data/group && sleep 3600",
		withVolume(v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
			v1.VolumeMount{MountPath: "/data"}),
		withVolume(v1.Volume{Name: "inline", VolumeSource: v1.VolumeSource{CSI: &v1.CSIVolumeSource{
			Driver: csiDriverName, VolumeAttributes: map[string]string{"content": "inline-hello"},
		}}}, v1.VolumeMount{MountPath: "/inline"}),
		withVolume(v1.Volume{Name: "eph", VolumeSource: v1.VolumeSource{Ephemeral: &v1.EphemeralVolumeSource{
			VolumeClaimTemplate: &v1.PersistentVolumeClaimTemplate{Spec: claimSpec},
		}}}, v1.VolumeMount{MountPath: "/eph"}),
		withGrace(1))
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: &fsGroup}
	start = time.Now()
	env.createPod(t, ns, pod)
	p, took := env.waitPod(t, ns, "csi", 60*time.Second, func(p *v1.Pod) (bool, string) {
		return p.Status.Phase == v1.PodRunning, "want Running"
	})
	t.Logf("pod with a provisioned, a generic ephemeral and an inline CSI volume Running in %s", took.Round(time.Millisecond))

	claim, err := env.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pv, err := env.kube.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	volDir := filepath.Join(data, "volumes", pv.Spec.CSI.VolumeHandle)
	// What the pod wrote went through the mounts into the driver's volume.
	env.eventually(t, 20*time.Second, func() (bool, string) {
		_, err := os.ReadFile(filepath.Join(volDir, "group"))
		return err == nil, fmt.Sprintf("%s/group: %v", volDir, err)
	})
	for f, want := range map[string]string{"out": "persistent\n", "inline": "inline-hello", "group": fmt.Sprintf("%d\n", fsGroup)} {
		if b, err := os.ReadFile(filepath.Join(volDir, f)); err != nil || string(b) != want {
			t.Errorf("volume file %s = %q, %v; want %q", f, b, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(volDir, ".published-for")); err != nil || string(b) != ns+"/csi" {
		t.Errorf("podInfoOnMount: the driver saw %q, %v", b, err)
	}
	staging, _ := filepath.Glob(filepath.Join(root, "plugins", "kubernetes.io", "csi", csiDriverName, "*", "globalmount"))
	if mounts, _ := hostMountsUnder(filepath.Join(root, "plugins", "kubernetes.io", "csi")); len(staging) != 2 || len(mounts) != 2 {
		t.Errorf("staged volumes %v, mounts %v; want the two claims' global mounts", staging, mounts)
	}

	// The Summary reports the driver's numbers, with the claims named.
	env.eventually(t, 30*time.Second, func() (bool, string) {
		vols := env.summaryVolumes(t, ns, "csi")
		d, i, e := vols["data"], vols["inline"], vols["eph"]
		ok := d.PVCRef != nil && d.PVCRef.Name == "data" && d.CapacityBytes != nil && *d.CapacityBytes == 64<<20 &&
			d.UsedBytes != nil && i.Name == "inline" && i.PVCRef == nil &&
			e.PVCRef != nil && e.PVCRef.Name == "csi-eph"
		return ok, fmt.Sprintf("summary volumes %s", describeVolumeStats(vols))
	})

	// A berth killed and started again finds its drivers registered anew
	// and the pod's volumes as they were: nothing restarts, nothing is
	// unmounted; the teardown below works from what the disk records.
	env.ensureBerthRuns(t)
	if err := env.berth.kill(); err != nil {
		t.Fatal(err)
	}
	if err := env.berth.start(); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, 30*time.Second, func() (bool, string) {
		cn, err := env.kube.StorageV1().CSINodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil || len(cn.Spec.Drivers) == 0 {
			return false, fmt.Sprintf("CSINode after the restart: %v", err)
		}
		vols := env.summaryVolumes(t, ns, "csi")
		return vols["data"].PVCRef != nil, "the restarted berth reports the claim's volume: " + describeVolumeStats(vols)
	})
	if p2, err := env.getPod(ns, "csi"); err != nil || p2 == nil {
		t.Errorf("pod after berth's restart: %v", err)
	} else if cs := p2.Status.ContainerStatuses; len(cs) != 1 || cs[0].RestartCount != 0 || cs[0].State.Running == nil {
		t.Errorf("after berth's restart the pod changed: %s", describePod(p2))
	}
	if mounts, _ := hostMountsUnder(filepath.Join(env.podDir(p.UID), "volumes", "kubernetes.io~csi")); len(mounts) != 3 {
		t.Errorf("pod's CSI mounts after the restart: %v, want 3", mounts)
	}

	// Teardown: unpublished, unstaged, nothing left mounted.
	start = time.Now()
	env.deletePod(t, p)
	env.eventually(t, 30*time.Second, env.podDirGone(p.UID))
	env.eventually(t, 10*time.Second, func() (bool, string) {
		mounts, err := hostMountsUnder(filepath.Join(root, "plugins", "kubernetes.io", "csi"))
		left, _ := filepath.Glob(filepath.Join(root, "plugins", "kubernetes.io", "csi", csiDriverName, "*"))
		return err == nil && len(mounts) == 0 && len(left) == 0, fmt.Sprintf("staging mounts %v, dirs %v, %v", mounts, left, err)
	})
	if ephemeral, _ := os.ReadDir(filepath.Join(data, "ephemeral")); len(ephemeral) != 0 {
		t.Errorf("inline volume data left: %v", ephemeral)
	}
	t.Logf("pod deleted; its CSI volumes unpublished and unstaged in %s", since(start))

	// The claims go (the generic ephemeral one with its pod), and their
	// volumes with them.
	if err := env.kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, 60*time.Second, func() (bool, string) {
		left, _ := os.ReadDir(filepath.Join(data, "volumes"))
		pvs, err := env.kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, pv := range pvs.Items {
			if pv.Spec.CSI != nil && pv.Spec.CSI.Driver == csiDriverName {
				n++
			}
		}
		return len(left) == 0 && n == 0, fmt.Sprintf("driver volumes %d, PVs %d", len(left), n)
	})
}

// createCSIDriver creates the test driver's CSIDriver object: no attach,
// pod info on mount, fsGroup applied by the kubelet to every volume,
// persistent and inline volumes.
func (env *environment) createCSIDriver(t *testing.T) {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	policy := storagev1.FileFSGroupPolicy
	cd := &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: csiDriverName},
		Spec: storagev1.CSIDriverSpec{
			AttachRequired:       ptrTo(false),
			PodInfoOnMount:       ptrTo(true),
			FSGroupPolicy:        &policy,
			VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent, storagev1.VolumeLifecycleEphemeral},
		},
	}
	if _, err := env.kube.StorageV1().CSIDrivers().Create(ctx, cd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create CSIDriver: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := apiContext()
		defer cancel()
		_ = env.kube.StorageV1().CSIDrivers().Delete(ctx, csiDriverName, metav1.DeleteOptions{})
	})
}

func (env *environment) createStorageClass(t *testing.T) string {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	immediate := storagev1.VolumeBindingImmediate
	sc, err := env.kube.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{GenerateName: "csi-hostpath-"},
		Provisioner:       csiDriverName,
		VolumeBindingMode: &immediate,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create StorageClass: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := apiContext()
		defer cancel()
		_ = env.kube.StorageV1().StorageClasses().Delete(ctx, sc.Name, metav1.DeleteOptions{})
	})
	return sc.Name
}

// buildTool builds ./tools/<name> into the suite's bin directory.
func (env *environment) buildTool(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(env.base, "bin", name)
	cmd := exec.Command("go", "build", "-o", bin, "./tools/"+name)
	cmd.Dir = env.repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// startProcess runs a helper process for the test, logging to
// stateDir/<name>.log; it is stopped (SIGTERM, then SIGKILL) when the test
// ends, and dies with the test binary.
func (env *environment) startProcess(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(env.stateDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (last 40 lines):\n%s", name, tailLines(string(b), 40))
		}
	})
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// summaryVolumes is the pod's volume stats in berth's Summary, by name.
func (env *environment) summaryVolumes(t *testing.T, ns, pod string) map[string]statsapi.VolumeStats {
	t.Helper()
	crt, key := env.pkiPair("admin")
	var summary statsapi.Summary
	if err := json.Unmarshal(kubeletGet(t, env.kubeletPort(t), credentials{certFile: crt, keyFile: key}, "/stats/summary"), &summary); err != nil {
		t.Fatalf("/stats/summary: %v", err)
	}
	out := map[string]statsapi.VolumeStats{}
	for _, p := range summary.Pods {
		if p.PodRef.Namespace == ns && p.PodRef.Name == pod {
			for _, v := range p.VolumeStats {
				out[v.Name] = v
			}
		}
	}
	return out
}

func describeVolumeStats(vols map[string]statsapi.VolumeStats) string {
	var b strings.Builder
	for name, v := range vols {
		ref := "-"
		if v.PVCRef != nil {
			ref = v.PVCRef.Name
		}
		fmt.Fprintf(&b, "%s(pvc %s, capacity %v, used %v) ", name, ref, deref(v.CapacityBytes), deref(v.UsedBytes))
	}
	return b.String()
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
