package runtime

import (
	"context"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/plan"
)

func TestImageMountSupport(t *testing.T) {
	for _, tc := range []struct {
		name, version string
		ok            bool
	}{
		{"containerd", "1.6.20~ds1", false},
		{"containerd", "v2.0.5", false},
		{"containerd", "v2.1.0", true},
		{"containerd", "2.2.1", true},
		{"containerd", "not a version", false},
		{"cri-o", "1.30.4", false},
		{"cri-o", "1.31.0", true},
		{"fakeRuntime", "0.1.0", true}, // unknown: given the mount
	} {
		err := imageMountSupport(tc.name, tc.version)
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: %v, want ok %v", tc.name, tc.version, err, tc.ok)
		}
	}
}

// imageVolumePod mounts the image volume "tools" into "app" (at a subPath).
func imageVolumePod() *v1.Pod {
	pod := fakePod()
	pod.Spec.InitContainers = nil
	pod.Spec.Containers = pod.Spec.Containers[:1]
	pod.Spec.Volumes = []v1.Volume{{Name: "tools", VolumeSource: v1.VolumeSource{Image: &v1.ImageVolumeSource{Reference: "busybox:1.0", PullPolicy: v1.PullIfNotPresent}}}}
	pod.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "tools", MountPath: "/tools", SubPath: "bin"}}
	return pod
}

func TestImageVolumeMounted(t *testing.T) {
	e := newEnv(t)
	pod := imageVolumePod()
	res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}})
	if res.Err != nil || len(res.Waiting) != 0 {
		t.Fatalf("SyncPod = %+v", res)
	}
	app := e.status(pod).FindContainer("app")
	if app == nil {
		t.Fatal("app not created")
	}
	var mount *runtimeapi.Mount
	for _, m := range e.rs.config(app.ID).GetMounts() {
		if m.ContainerPath == "/tools" {
			mount = m
		}
	}
	if mount == nil || mount.GetImage().GetImage() == "" || mount.GetImage().GetUserSpecifiedImage() != "busybox:1.0" || mount.ImageSubPath != "bin" || !mount.Readonly || mount.HostPath != "" {
		t.Errorf("mount %+v, want the image, read-only, at subPath bin", mount)
	}
	if got := strings.Join(e.events(), "\n"); !strings.Contains(got, `Normal Pulled Container image "busybox:1.0" already present on machine`) {
		t.Errorf("events %s, want the volume's image found", got)
	}
}

func TestImageVolumeRefusedByOldRuntime(t *testing.T) {
	e := newEnv(t)
	e.rs.version = &runtimeapi.VersionResponse{RuntimeName: "containerd", RuntimeVersion: "1.6.20~ds1", RuntimeApiVersion: "v1"}
	pod := imageVolumePod()
	res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}})
	w, ok := res.Waiting["app"]
	want := `image volume "tools": the container runtime (containerd 1.6.20~ds1) cannot mount images; image volumes need containerd 2.1 or later, or CRI-O 1.31 or later`
	if !ok || w.Reason != ReasonCreateContainerError || w.Message != want {
		t.Fatalf("waiting %+v, want CreateContainerError: %s", w, want)
	}
	if st := e.status(pod); st.FindContainer("app") != nil {
		t.Error("a container was created")
	}
	if got := strings.Join(e.events(), "\n"); !strings.Contains(got, "Warning Failed Error: "+want) {
		t.Errorf("events %s, want the refusal", got)
	}
}
