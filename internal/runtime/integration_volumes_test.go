package runtime_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
	"github.com/berth-dev/berth/internal/runtime"
)

// volumePaths stands in for the volume manager: volume name to host path.
type volumePaths map[string]string

func (v volumePaths) HostPath(_ types.UID, name string) (string, bool) {
	p, ok := v[name]
	return p, ok
}

// apiObjects stands in for the API object cache.
type apiObjects struct {
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
}

func (o apiObjects) GetConfigMap(_ context.Context, _, name string) (*v1.ConfigMap, error) {
	if cm, ok := o.configMaps[name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("configmap"), name)
}

func (o apiObjects) GetSecret(_ context.Context, _, name string) (*v1.Secret, error) {
	if s, ok := o.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("secret"), name)
}

// TestIntegrationVolumesAndHooks runs a pod with a bind-mounted volume
// (subPath, subPathExpr, read-only, a file over /etc/hosts), environment
// from a ConfigMap and a Secret, and postStart and preStop hooks; the
// preStop hook's file must be there when the container gets SIGTERM.
func TestIntegrationVolumesAndHooks(t *testing.T) {
	data := t.TempDir()
	if err := os.Chmod(data, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "hosts"), []byte("# mounted by the pod\n127.0.0.1\tlocalhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(data, "escape")); err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, func(o *runtime.Options) {
		o.Volumes = volumePaths{"data": data}
		o.Objects = apiObjects{
			configMaps: map[string]*v1.ConfigMap{"settings": {Data: map[string]string{"mode": "fast"}}},
			secrets:    map[string]*v1.Secret{"creds": {Data: map[string][]byte{"user": []byte("admin")}}},
		}
	})
	ctx := context.Background()
	grace := int64(10)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "it-volumes", Namespace: "default", UID: uuid.NewUUID()},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Volumes:                       []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
			Containers: []v1.Container{
				{
					Name: "main", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
					// On SIGTERM, copy what preStop wrote: proof that it ran first.
					Command: []string{"sh", "-c", `trap 'cat /work/prestop > /work/seen-at-term 2>&1; exit 0' TERM; echo hi > /work/started; sleep 3600 & wait`},
					Env: []v1.EnvVar{
						{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "MODE", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "settings"}, Key: "mode"}}},
						{Name: "MAYBE", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "absent"}, Key: "k", Optional: ptr(true)}}},
					},
					EnvFrom: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}}, Prefix: "DB_"}},
					VolumeMounts: []v1.VolumeMount{
						{Name: "data", MountPath: "/work", SubPath: "sub/dir"},
						{Name: "data", MountPath: "/ro", ReadOnly: true},
						{Name: "data", MountPath: "/mine", SubPathExpr: "per-pod/$(POD_NAME)"},
						{Name: "data", MountPath: "/etc/hosts", SubPath: "hosts"},
					},
					Lifecycle: &v1.Lifecycle{
						PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo post > /work/poststart"}}},
						PreStop:   &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo bye > /work/prestop"}}},
					},
				},
				{
					Name: "escape", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
					Command:      []string{"sleep", "3600"},
					VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "escape"}},
				},
				{
					Name: "lastwords", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
					Command:                  []string{"sh", "-c", "echo last words; exit 4"},
					TerminationMessagePath:   "/dev/termination-log",
					TerminationMessagePolicy: v1.TerminationMessageFallbackToLogsOnError,
				},
			},
		},
	}
	st := &container.PodStatus{UID: pod.UID, Name: pod.Name, Namespace: pod.Namespace}
	defer func() { h.cleanup(st) }()

	res := h.m.SyncPod(ctx, pod, st, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0, 1, 2}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if w := res.Waiting["escape"]; w.Reason != "CreateContainerConfigError" || w.Message != `failed to prepare subPath for volumeMount "data" of container "escape"` {
		t.Errorf("escape = %+v, want a subPath error", w)
	}
	if w, ok := res.Waiting["main"]; ok {
		t.Fatalf("main waits: %+v", w)
	}
	st = h.waitFor("main running and lastwords exited", pod.UID, func(st *container.PodStatus) bool {
		m, l := st.FindContainer("main"), st.FindContainer("lastwords")
		return m != nil && m.State == container.StateRunning && l != nil && l.State == container.StateExited
	})
	main := st.FindContainer("main")

	// The subPath was made with the volume's mode; the container wrote
	// through it, and postStart ran.
	work := filepath.Join(data, "sub", "dir")
	if fi, err := os.Stat(work); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("subPath directory: %v, %v", fi.Mode(), err)
	}
	for file, want := range map[string]string{"started": "hi\n", "poststart": "post\n"} {
		if got, err := os.ReadFile(filepath.Join(work, file)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", file, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "per-pod", "it-volumes")); err != nil {
		t.Errorf("subPathExpr directory: %v", err)
	}
	if out, _, err := h.rs.ExecSync(ctx, main.ID, []string{"touch", "/ro/x"}, 10*time.Second); err == nil {
		t.Errorf("wrote to a read-only mount (%s)", out)
	}
	if hosts := h.exec(main.ID, "cat", "/etc/hosts"); !strings.HasPrefix(hosts, "# mounted by the pod") {
		t.Errorf("/etc/hosts is not the pod's own:\n%s", hosts)
	}
	env := h.exec(main.ID, "env")
	for _, want := range []string{"MODE=fast\n", "DB_user=admin\n", "POD_NAME=it-volumes\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	if strings.Contains(env, "MAYBE=") {
		t.Errorf("optional variable of a missing ConfigMap is set:\n%s", env)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("something was made outside the volume: %v", entries)
	}
	// FallbackToLogsOnError: the log's end is the message.
	if l := st.FindContainer("lastwords"); l.ExitCode != 4 || l.Message != "last words\n" {
		t.Errorf("lastwords = exit %d message %q", l.ExitCode, l.Message)
	}

	// Kill: preStop first, then SIGTERM, which finds its file.
	if err := h.m.KillPod(ctx, pod, st, nil); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"prestop": "bye\n", "seen-at-term": "bye\n"} {
		if got, err := os.ReadFile(filepath.Join(work, file)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", file, got, err, want)
		}
	}
	st, _ = h.m.GetPodStatus(ctx, pod.UID, pod.Name, pod.Namespace)
	if m := st.FindContainer("main"); m.State != container.StateExited || m.ExitCode != 0 {
		t.Errorf("main after kill = %+v, want a clean exit on SIGTERM", m)
	}
}

func ptr[T any](v T) *T { return &v }

// TestIntegrationPullSecret pulls from a registry that wants a login, with
// credentials from the pod's imagePullSecrets. It needs BERTH_AUTH_REGISTRY
// (host:port, reachable over plain HTTP by the containerd) and
// BERTH_AUTH_REGISTRY_CREDS (user:password), with berth/busybox:auth pushed:
//
//	export REGISTRY_ADDR=127.0.0.1:5057 BERTH_REGISTRY_AUTH=berth:s3cret
//	hack/registry.sh up /tmp/reg && hack/registry.sh push _output/images/busybox.tar berth/busybox:auth
//	BERTH_INSECURE_REGISTRIES=127.0.0.1:5057 hack/containerd.sh up /tmp/x
func TestIntegrationPullSecret(t *testing.T) {
	registry, creds := os.Getenv("BERTH_AUTH_REGISTRY"), os.Getenv("BERTH_AUTH_REGISTRY_CREDS")
	if registry == "" || creds == "" {
		t.Skip("BERTH_AUTH_REGISTRY and BERTH_AUTH_REGISTRY_CREDS are not set")
	}
	user, password, _ := strings.Cut(creds, ":")
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	secret := func(auths string) *v1.Secret {
		return &v1.Secret{Type: v1.SecretTypeDockerConfigJson, Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(`{"auths":` + auths + `}`)}}
	}
	h := newHarnessWith(t, func(o *runtime.Options) {
		o.Objects = apiObjects{secrets: map[string]*v1.Secret{
			"regcred": secret(`{"http://` + registry + `/v2/": {"auth": "` + auth + `"}}`),
			"wrong":   secret(`{"` + registry + `": {"username": "` + user + `", "password": "nope"}}`),
			"other":   secret(`{"registry.example": {"auth": "` + auth + `"}}`),
		}}
	})
	ctx := context.Background()
	image := registry + "/berth/busybox:auth"

	run := func(name string, pullSecrets ...string) (container.SyncResult, *container.PodStatus) {
		pod := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uuid.NewUUID()},
			Spec: v1.PodSpec{Containers: []v1.Container{{
				Name: "main", Image: image, ImagePullPolicy: v1.PullAlways, Command: []string{"sh", "-c", "exit 0"},
			}}},
		}
		for _, s := range pullSecrets {
			pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, v1.LocalObjectReference{Name: s})
		}
		st := &container.PodStatus{UID: pod.UID, Name: pod.Name, Namespace: pod.Namespace}
		t.Cleanup(func() { h.cleanup(st) })
		res := h.m.SyncPod(ctx, pod, st, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}})
		if res.Err != nil {
			t.Fatalf("%s: %v", name, res.Err)
		}
		st, _ = h.m.GetPodStatus(ctx, pod.UID, pod.Name, pod.Namespace)
		return res, st
	}

	for _, tt := range []struct {
		name    string
		secrets []string
	}{
		{"it-pull-anonymous", nil},
		{"it-pull-wrong", []string{"wrong", "other"}},
		{"it-pull-missing", []string{"absent"}},
	} {
		res, _ := run(tt.name, tt.secrets...)
		w := res.Waiting["main"]
		t.Logf("%s: %s: %s", tt.name, w.Reason, w.Message)
		if w.Reason != "ErrImagePull" {
			t.Errorf("%s: waiting %+v, want ErrImagePull", tt.name, w)
		}
	}
	events := drainEvents(h.rec)
	if !containsPrefix(events, "Warning FailedToRetrieveImagePullSecret Unable to retrieve some image pull secrets (absent); attempting to pull the image may not succeed.") {
		t.Errorf("no FailedToRetrieveImagePullSecret event in\n%s", strings.Join(events, "\n"))
	}

	// A missing secret does not keep the good one from working; the wrong
	// credentials are tried first and fail.
	res, st := run("it-pull-ok", "absent", "wrong", "regcred")
	if len(res.Waiting) > 0 || st.FindContainer("main") == nil {
		t.Fatalf("pull with regcred: %+v", res)
	}
	if !containsPrefix(drainEvents(h.rec), `Normal Pulled Successfully pulled image "`+image+`"`) {
		t.Error("no Pulled event")
	}
}
