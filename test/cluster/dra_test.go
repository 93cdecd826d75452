package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// draDriver is the name upstream's DRA test driver registers by default.
const draDriver = "test-driver.cdi.k8s.io"

// cdiSpecDir is where the driver writes a CDI spec per prepared claim:
// one of CDI's default directories, which berth reads for a runtime
// without CDI support (containerd 1.6).
const cdiSpecDir = "/var/run/cdi"

// startDRADriver runs upstream's DRA test driver (test/e2e/dra/test-driver,
// built by hack/cluster.sh build) as the kubelet plugin of berth's node, as
// its DaemonSet would: it registers through berth's plugins_registry and
// publishes the node's ResourceSlices itself. It is stopped when the test
// ends.
func (env *environment) startDRADriver(t *testing.T) {
	t.Helper()
	root := filepath.Join(env.nodeDir, "root")
	for _, d := range []string{filepath.Join(root, "plugins_registry"), filepath.Join(root, "plugins", draDriver), cdiSpecDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	logPath := filepath.Join(env.stateDir, "dra-test-driver.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(env.repo, "_output", "cluster", "bin", "dra-test-driver"),
		"--kubeconfig", filepath.Join(env.stateDir, "admin.kubeconfig"), "-v", "3",
		"kubelet-plugin", "--node-name", nodeName,
		"--plugin-registration-path", filepath.Join(root, "plugins_registry"),
		"--datadir", filepath.Join(root, "plugins"),
		"--cdi-dir", cdiSpecDir, "--num-devices", "2")
	cmd.Stdout, cmd.Stderr = log, log
	// Dies with the test binary if the test cannot stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the DRA test driver: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("DRA test driver log (end):\n%s", strings.Join(tail(lines(string(out)), 40), "\n"))
		}
	})
}

// A pod with a ResourceClaim made from a template gets its device from
// upstream's DRA test driver: the scheduler allocates a device of the
// driver's ResourceSlice, berth has the driver prepare the claim and gives
// the container the CDI device the driver returned (its spec sets the
// claim's parameters as environment variables); once the pod has
// completed the claim is unprepared (the driver removes its CDI spec) and
// nothing is left in berth's checkpoint. A pod bound to the node whose
// claim is not reserved for it waits, with upstream's event, instead of
// failing.
func TestDRAResourceClaim(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.startDRADriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	class := &resourceapi.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{Name: "berth-" + ns},
		Spec: resourceapi.DeviceClassSpec{Selectors: []resourceapi.DeviceSelector{{
			CEL: &resourceapi.CELDeviceSelector{Expression: fmt.Sprintf("device.driver == %q", draDriver)},
		}}},
	}
	if _, err := env.kube.ResourceV1().DeviceClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create DeviceClass: %v", err)
	}
	t.Cleanup(func() {
		_ = env.kube.ResourceV1().DeviceClasses().Delete(context.Background(), class.Name, metav1.DeleteOptions{})
	})
	request := func(name string) resourceapi.DeviceClaim {
		return resourceapi.DeviceClaim{
			Requests: []resourceapi.DeviceRequest{{Name: name, Exactly: &resourceapi.ExactDeviceRequest{DeviceClassName: class.Name}}},
			Config: []resourceapi.DeviceClaimConfiguration{{DeviceConfiguration: resourceapi.DeviceConfiguration{
				Opaque: &resourceapi.OpaqueDeviceConfiguration{Driver: draDriver, Parameters: runtime.RawExtension{Raw: []byte(`{"berth":"yes"}`)}},
			}}},
		}
	}
	tmpl := &resourceapi.ResourceClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu"},
		Spec:       resourceapi.ResourceClaimTemplateSpec{Spec: resourceapi.ResourceClaimSpec{Devices: request("my-device")}},
	}
	if _, err := env.kube.ResourceV1().ResourceClaimTemplates(ns).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ResourceClaimTemplate: %v", err)
	}

	// The driver publishes the node's devices once it runs.
	env.eventually(t, 30*time.Second, func() (bool, string) {
		slices, err := env.kube.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, s := range slices.Items {
			if s.Spec.Driver == draDriver && s.Spec.NodeName != nil && *s.Spec.NodeName == nodeName && len(s.Spec.Devices) > 0 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no ResourceSlice of %s for node %s among %d", draDriver, nodeName, len(slices.Items))
	})

	p := shellPod("with-claim", "env")
	p.Spec.ResourceClaims = []v1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: &tmpl.Name}}
	p.Spec.Containers[0].Resources.Claims = []v1.ResourceClaim{{Name: "gpu"}}
	p.Spec.Containers = append(p.Spec.Containers, v1.Container{
		Name: "without", Image: busybox, ImagePullPolicy: v1.PullNever, Command: []string{"env"},
	})
	p.Spec.RestartPolicy = v1.RestartPolicyNever
	start := time.Now()
	env.createPod(t, ns, p)
	got := env.finishedPod(t, ns, p.Name)
	t.Logf("pod with a claim ran to completion in %s", since(start))
	out, err := env.podLogs(ns, p.Name, &v1.PodLogOptions{Container: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1.PodSucceeded {
		t.Fatalf("pod %s: %s; log:\n%s", p.Name, describePod(got), out)
	}
	if len(got.Status.ResourceClaimStatuses) != 1 || got.Status.ResourceClaimStatuses[0].ResourceClaimName == nil {
		t.Fatalf("resourceClaimStatuses %+v", got.Status.ResourceClaimStatuses)
	}
	claimName := *got.Status.ResourceClaimStatuses[0].ResourceClaimName
	vars := envOf(out)
	// The test driver's CDI spec: user_<parameter> and
	// claim_<claim>_<request>=true, non-alphanumerics as "_".
	claimVar := regexp.MustCompile(`[^a-zA-Z0-9]`).ReplaceAllString("claim_"+claimName+"_my-device", "_")
	if vars["user_berth"] != "yes" || vars[claimVar] != "true" {
		t.Fatalf("the container lacks the device's variables (user_berth=yes, %s=true); env:\n%s", claimVar, out)
	}
	without, err := env.podLogs(ns, p.Name, &v1.PodLogOptions{Container: "without"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(without, "user_berth") {
		t.Fatalf("the container without the claim got its device:\n%s", without)
	}

	// Completed: the claim is unprepared, which the driver does by removing
	// its CDI spec (named after the claim's UID; the claim itself may be
	// gone already: the controller deletes a pod's claims once it is done),
	// and berth's checkpoint forgets it.
	checkpoint := filepath.Join(env.nodeDir, "root", "dra_manager_state")
	env.eventually(t, 20*time.Second, func() (bool, string) {
		if specs, _ := filepath.Glob(filepath.Join(cdiSpecDir, draDriver+"-*-my-device.json")); len(specs) > 0 {
			return false, fmt.Sprintf("the driver's CDI specs %v are still there", specs)
		}
		b, err := os.ReadFile(checkpoint)
		if err != nil {
			return false, err.Error()
		}
		if strings.Contains(string(b), claimName) {
			return false, "the checkpoint still has the claim: " + string(b)
		}
		return true, ""
	})

	// A pod bound past the scheduler, whose claim is not reserved for it,
	// waits with upstream's event; it neither runs nor fails.
	claim2 := &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: "unreserved"}, Spec: resourceapi.ResourceClaimSpec{Devices: request("req")}}
	if _, err := env.kube.ResourceV1().ResourceClaims(ns).Create(ctx, claim2, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ResourceClaim: %v", err)
	}
	waiting := shellPod("waits", "env", onNode())
	waiting.Spec.ResourceClaims = []v1.PodResourceClaim{{Name: "gpu", ResourceClaimName: &claim2.Name}}
	waiting.Spec.Containers[0].Resources.Claims = []v1.ResourceClaim{{Name: "gpu"}}
	env.createPod(t, ns, waiting)
	env.eventually(t, 20*time.Second, env.eventReasons(ns, waiting.Name, "FailedPrepareDynamicResources"))
	w, err := env.kube.CoreV1().Pods(ns).Get(ctx, waiting.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w.Status.Phase != v1.PodPending {
		t.Fatalf("pod with an unreserved claim: %s, want Pending", describePod(w))
	}
	events, _ := env.events(ns, waiting.Name)
	for _, e := range events {
		if e.Reason == "FailedPrepareDynamicResources" && !strings.Contains(e.Message, "is not allowed to use ResourceClaim unreserved") {
			t.Errorf("event message %q", e.Message)
		}
	}
}
