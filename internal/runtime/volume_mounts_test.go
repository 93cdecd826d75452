package runtime

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// mountPod has one volume of each kind that matters for read-only-ness.
func mountPod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "uid-1"},
		Spec: v1.PodSpec{
			Volumes: []v1.Volume{
				{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
				{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/x"}}},
				{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}},
				{Name: "token", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{}}},
				{Name: "claim", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "c", ReadOnly: true}}},
				{Name: "unset"},
			},
			Containers: []v1.Container{{Name: "app"}},
		},
	}
}

func TestVolumeMounts(t *testing.T) {
	dirs := map[string]string{}
	for _, name := range []string{"data", "host", "cfg", "token", "claim"} {
		dirs[name] = filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(dirs[name], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dirs["cfg"], "key"), []byte("v"), 0o644); err != nil {
		t.Fatal(err)
	}
	mode := func(m v1.MountPropagationMode) *v1.MountPropagationMode { return &m }
	rro := func(m v1.RecursiveReadOnlyMode) *v1.RecursiveReadOnlyMode { return &m }
	tests := []struct {
		name        string
		mounts      []v1.VolumeMount
		privileged  bool
		env         []envVar
		supportsRRO bool
		want        []*runtimeapi.Mount
		binds       []subPathBind // the subPaths bound
		wantErr     string
	}{
		{
			name: "plain, read-only, relative mount path",
			mounts: []v1.VolumeMount{
				{Name: "data", MountPath: "/data"},
				{Name: "host", MountPath: "host", ReadOnly: true},
			},
			want: []*runtimeapi.Mount{
				{ContainerPath: "/data", HostPath: dirs["data"]},
				{ContainerPath: "/host", HostPath: dirs["host"], Readonly: true},
			},
		},
		{
			name: "volumes berth owns are read-only whatever the mount says",
			mounts: []v1.VolumeMount{
				{Name: "cfg", MountPath: "/etc/cfg"},
				{Name: "token", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"},
				{Name: "claim", MountPath: "/claim"},
			},
			want: []*runtimeapi.Mount{
				{ContainerPath: "/etc/cfg", HostPath: dirs["cfg"], Readonly: true},
				{ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", HostPath: dirs["token"], Readonly: true},
				{ContainerPath: "/claim", HostPath: dirs["claim"], Readonly: true},
			},
		},
		{
			name:   "subPath of a file",
			mounts: []v1.VolumeMount{{Name: "cfg", MountPath: "/etc/app.conf", SubPath: "key"}},
			want:   []*runtimeapi.Mount{{ContainerPath: "/etc/app.conf", HostPath: "/pod/volume-subpaths/cfg/app/0", Readonly: true}},
			binds:  []subPathBind{{volumePath: dirs["cfg"], path: filepath.Join(dirs["cfg"], "key"), target: "/pod/volume-subpaths/cfg/app/0"}},
		},
		{
			name:   "subPathExpr from the environment",
			mounts: []v1.VolumeMount{{Name: "data", MountPath: "/a"}, {Name: "data", MountPath: "/logs", SubPathExpr: "logs/$(POD_NAME)"}},
			env:    []envVar{{"POD_NAME", "web-1"}},
			want: []*runtimeapi.Mount{
				{ContainerPath: "/a", HostPath: dirs["data"]},
				{ContainerPath: "/logs", HostPath: "/pod/volume-subpaths/data/app/1"},
			},
			binds: []subPathBind{{volumePath: dirs["data"], path: filepath.Join(dirs["data"], "logs", "web-1"), target: "/pod/volume-subpaths/data/app/1"}},
		},
		{
			name:    "subPathExpr with missing variables",
			mounts:  []v1.VolumeMount{{Name: "data", MountPath: "/logs", SubPathExpr: "$(B)/$(A)/$(SET)"}},
			env:     []envVar{{"SET", "x"}, {"A", ""}},
			wantErr: "missing value for A, B",
		},
		{
			name: "propagation",
			mounts: []v1.VolumeMount{
				{Name: "data", MountPath: "/a", MountPropagation: mode(v1.MountPropagationNone)},
				{Name: "host", MountPath: "/b", MountPropagation: mode(v1.MountPropagationHostToContainer)},
				{Name: "host", MountPath: "/c", MountPropagation: mode(v1.MountPropagationBidirectional)},
			},
			privileged: true,
			want: []*runtimeapi.Mount{
				{ContainerPath: "/a", HostPath: dirs["data"], Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
				{ContainerPath: "/b", HostPath: dirs["host"], Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
				{ContainerPath: "/c", HostPath: dirs["host"], Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
			},
		},
		{
			name:    "bidirectional needs a privileged container",
			mounts:  []v1.VolumeMount{{Name: "host", MountPath: "/c", MountPropagation: mode(v1.MountPropagationBidirectional)}},
			wantErr: `volume mount "host": Bidirectional mount propagation is available only to privileged containers`,
		},
		{
			name:    "unknown propagation",
			mounts:  []v1.VolumeMount{{Name: "host", MountPath: "/c", MountPropagation: mode("Sideways")}},
			wantErr: `invalid MountPropagation mode: "Sideways"`,
		},
		{
			name: "recursive read-only",
			mounts: []v1.VolumeMount{
				{Name: "data", MountPath: "/a", ReadOnly: true, RecursiveReadOnly: rro(v1.RecursiveReadOnlyIfPossible)},
				{Name: "host", MountPath: "/b", ReadOnly: true, RecursiveReadOnly: rro(v1.RecursiveReadOnlyEnabled)},
			},
			supportsRRO: true,
			want: []*runtimeapi.Mount{
				{ContainerPath: "/a", HostPath: dirs["data"], Readonly: true, RecursiveReadOnly: true},
				{ContainerPath: "/b", HostPath: dirs["host"], Readonly: true, RecursiveReadOnly: true},
			},
		},
		{
			name:   "recursive read-only if possible, and it is not",
			mounts: []v1.VolumeMount{{Name: "data", MountPath: "/a", ReadOnly: true, RecursiveReadOnly: rro(v1.RecursiveReadOnlyIfPossible)}},
			want:   []*runtimeapi.Mount{{ContainerPath: "/a", HostPath: dirs["data"], Readonly: true}},
		},
		{
			name:    "recursive read-only required, not supported",
			mounts:  []v1.VolumeMount{{Name: "data", MountPath: "/a", ReadOnly: true, RecursiveReadOnly: rro(v1.RecursiveReadOnlyEnabled)}},
			wantErr: `volume "data" requested recursive read-only mode, but it is not supported by the runtime`,
		},
		{
			name:        "recursive read-only of a writable mount",
			mounts:      []v1.VolumeMount{{Name: "data", MountPath: "/a", RecursiveReadOnly: rro(v1.RecursiveReadOnlyEnabled)}},
			supportsRRO: true,
			wantErr:     `volume "data" requested recursive read-only mode, but it is not read-only`,
		},
		{
			name:    "not in the spec",
			mounts:  []v1.VolumeMount{{Name: "nope", MountPath: "/n"}},
			wantErr: `cannot find volume "nope" to mount into container "app"`,
		},
		{
			name:    "in the spec but not set up",
			mounts:  []v1.VolumeMount{{Name: "unset", MountPath: "/n"}},
			wantErr: `cannot find volume "unset" to mount into container "app"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := mountPod()
			c := &pod.Spec.Containers[0]
			c.VolumeMounts = tt.mounts
			if tt.privileged {
				c.SecurityContext = &v1.SecurityContext{Privileged: ptrTo(true)}
			}
			var binds []subPathBind
			got, err := volumeMounts(pod, c, mountParams{
				hostPath:    func(name string) (string, bool) { p, ok := dirs[name]; return p, ok },
				env:         tt.env,
				supportsRRO: tt.supportsRRO,
				podDir:      "/pod",
				bindSubPath: func(b subPathBind) (string, error) { binds = append(binds, b); return b.target, nil },
			})
			if !reflect.DeepEqual(binds, tt.binds) {
				t.Errorf("bound %+v, want %+v", binds, tt.binds)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d mounts, want %d: %v", len(got), len(tt.want), got)
			}
			for i := range got {
				checkProto(t, "mount "+tt.want[i].ContainerPath, tt.want[i], got[i])
			}
		})
	}

	// Without a volume manager nothing can be mounted.
	pod := mountPod()
	pod.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
	if _, err := volumeMounts(pod, &pod.Spec.Containers[0], mountParams{}); err == nil || err.Error() != `cannot find volume "data" to mount into container "app"` {
		t.Errorf("without volumes: %v", err)
	}
	// Block devices are not supported.
	pod.Spec.Containers[0].VolumeMounts = nil
	pod.Spec.Containers[0].VolumeDevices = []v1.VolumeDevice{{Name: "host", DevicePath: "/dev/x"}}
	if _, err := volumeMounts(pod, &pod.Spec.Containers[0], mountParams{}); err == nil || err.Error() != `volume device "host" of type hostPath is not supported yet` {
		t.Errorf("volume device: %v", err)
	}
}

func TestPrepareSubPath(t *testing.T) {
	outside := t.TempDir()
	vol := filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	// The umask would take these bits away; the volume has them.
	if err := os.Chmod(vol, 0o777|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustDo(os.MkdirAll(filepath.Join(vol, "dir", "inner"), 0o755))
	mustDo(os.WriteFile(filepath.Join(vol, "file"), []byte("x"), 0o644))
	mustDo(os.Symlink("dir", filepath.Join(vol, "link-in")))               // stays inside
	mustDo(os.Symlink("dir/../file", filepath.Join(vol, "link-file")))     // stays inside
	mustDo(os.Symlink(outside, filepath.Join(vol, "link-out")))            // absolute, leaves
	mustDo(os.Symlink("../../..", filepath.Join(vol, "dir", "link-up")))   // relative, leaves
	mustDo(os.Symlink("/etc/passwd", filepath.Join(vol, "link-passwd")))   // a host file
	mustDo(os.Symlink("nowhere/x", filepath.Join(vol, "link-dangling")))   // dangling, inside
	mustDo(os.Symlink(outside+"/new", filepath.Join(vol, "link-dangout"))) // dangling, outside

	tests := []struct {
		subPath string
		want    string // relative to vol
		wantErr bool
		created []string // directories that must now exist with the volume's mode
	}{
		{subPath: "dir", want: "dir"},
		{subPath: "dir/inner", want: "dir/inner"},
		{subPath: "file", want: "file"},
		{subPath: "./dir//inner/", want: "dir/inner"},
		{subPath: "link-in", want: "dir"},
		{subPath: "link-in/inner", want: "dir/inner"},
		{subPath: "link-file", want: "file"},
		{subPath: "new/deeper", want: "new/deeper", created: []string{"new", "new/deeper"}},
		{subPath: "link-in/made", want: "dir/made", created: []string{"dir/made"}},
		{subPath: "link-out", wantErr: true},
		{subPath: "link-out/x", wantErr: true},
		{subPath: "dir/link-up", wantErr: true},
		{subPath: "link-passwd", wantErr: true},
		{subPath: "link-dangling", wantErr: true},
		{subPath: "link-dangout", wantErr: true},
	}
	for _, tt := range tests {
		base, got, err := prepareSubPath(vol, tt.subPath)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%s: resolved to %s, want an error", tt.subPath, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.subPath, err)
			continue
		}
		if base != vol {
			t.Errorf("%s: volume %s, want %s", tt.subPath, base, vol)
		}
		if want := filepath.Join(vol, tt.want); got != want {
			t.Errorf("%s: %s, want %s", tt.subPath, got, want)
		}
		for _, dir := range tt.created {
			fi, err := os.Stat(filepath.Join(vol, dir))
			if err != nil || !fi.IsDir() || fi.Mode()&(os.ModePerm|os.ModeSetgid) != 0o777|os.ModeSetgid {
				t.Errorf("%s: created %s = %v, %v; want a directory with mode 2777", tt.subPath, dir, fi.Mode(), err)
			}
		}
	}
	// Nothing was created outside.
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("created outside the volume: %v", entries)
	}
}

func TestCheckSubPath(t *testing.T) {
	for subPath, wantErr := range map[string]string{
		"a/b":     "",
		"a..b":    "",
		"..a/b":   "",
		"/abs":    "error SubPath `/abs` must not be an absolute path",
		"..":      "unable to provision SubPath `..`: must not contain '..'",
		"a/../b":  "unable to provision SubPath `a/../b`: must not contain '..'",
		"a/b/..":  "unable to provision SubPath `a/b/..`: must not contain '..'",
		"./a/./b": "",
	} {
		err := checkSubPath(subPath)
		if got := ""; err != nil {
			got = err.Error()
			if got != wantErr {
				t.Errorf("%q: %q, want %q", subPath, got, wantErr)
			}
		} else if wantErr != "" {
			t.Errorf("%q: no error, want %q", subPath, wantErr)
		}
	}
}

func TestManagedMountsSkipHosts(t *testing.T) {
	e := newEnv(t)
	pod := fakePod()
	c := &pod.Spec.Containers[0]
	mounts, err := e.m.managedMounts(pod, c, []string{"10.0.0.5"})
	if err != nil || len(mounts) != 2 || mounts[0].ContainerPath != "/etc/hosts" || mounts[1].ContainerPath != "/dev/termination-log" {
		t.Fatalf("managedMounts = %v, %v", mounts, err)
	}
	c.VolumeMounts = []v1.VolumeMount{{Name: "hosts", MountPath: "/etc/hosts"}}
	mounts, err = e.m.managedMounts(pod, c, []string{"10.0.0.5"})
	if err != nil || len(mounts) != 1 || strings.Contains(mounts[0].ContainerPath, "hosts") {
		t.Errorf("with a volume at /etc/hosts: %v, %v", mounts, err)
	}
}

func TestManagedMountsHostNetworkHosts(t *testing.T) {
	e := newEnv(t)
	e.m.node.nodeHosts = filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(e.m.node.nodeHosts, []byte("127.0.0.1\tlocalhost\n192.168.1.10\tnode-a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pod := fakePod()
	pod.Spec.HostNetwork = true
	pod.Spec.HostAliases = []v1.HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo", "bar"}}}
	c := &pod.Spec.Containers[0]
	// A host-network pod has no IP of its own from the runtime.
	mounts, err := e.m.managedMounts(pod, c, nil)
	if err != nil || len(mounts) == 0 || mounts[0].ContainerPath != "/etc/hosts" {
		t.Fatalf("managedMounts = %v, %v", mounts, err)
	}
	got, err := os.ReadFile(mounts[0].HostPath)
	want := "# Kubernetes-managed hosts file (host network).\n" +
		"127.0.0.1\tlocalhost\n192.168.1.10\tnode-a\n" +
		"\n# Entries added by HostAliases.\n" +
		"123.45.67.89\tfoo\tbar\n"
	if err != nil || string(got) != want {
		t.Errorf("hosts file = %q, %v; want %q", got, err, want)
	}

	// Without the node's file the container cannot be configured.
	e.m.node.nodeHosts = filepath.Join(t.TempDir(), "missing")
	if _, err := e.m.managedMounts(pod, c, nil); err == nil || !strings.Contains(err.Error(), "read the node's hosts file") {
		t.Errorf("missing node hosts file: %v", err)
	}

	// A pod on the pod network without an IP yet gets none.
	pod.Spec.HostNetwork = false
	mounts, err = e.m.managedMounts(pod, c, nil)
	if err != nil || len(mounts) != 1 || mounts[0].ContainerPath == "/etc/hosts" {
		t.Errorf("pod network without IP: %v, %v", mounts, err)
	}
}
