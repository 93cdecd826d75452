package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// saDir is where admission mounts the default projected service account
// volume (kube-api-access-*).
const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// What a Deployment needs on a berth node: its pods mount a ConfigMap, a
// Secret, an emptyDir and the default service account token, with the
// right contents and modes, the Secret on tmpfs; the pod's directory under
// berth's root dir goes with the pod.
func TestVolumesDeployment(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.createConfigMap(t, ns, "app-config", map[string]string{"app.conf": "mode=prod\n"})
	env.createSecret(t, ns, "app-secret", map[string]string{"password": "s3cret"})
	secretMode := int32(0o400)
	tmpl := sleeper("web",
		withVolume(configMapVolume("config", "app-config"), v1.VolumeMount{MountPath: "/etc/app"}),
		withVolume(v1.Volume{Name: "secret", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{
			SecretName: "app-secret", DefaultMode: &secretMode,
		}}}, v1.VolumeMount{MountPath: "/etc/secret", ReadOnly: true}),
		withVolume(emptyDirVolume("scratch"), v1.VolumeMount{MountPath: "/scratch"}),
		withGrace(1))

	start := time.Now()
	env.createDeployment(t, ns, deployment("web", 1, tmpl))
	pods, took := env.waitReady(t, ns, "web", 1, 30*time.Second)
	t.Logf("deployment with configMap, secret, emptyDir and token volumes -> Ready in %s", took.Round(time.Millisecond))
	pod := pods[0]
	id := runningID(t, &pod, "main")

	// path -> want content, want mode (of the file the symlinks lead to).
	for _, f := range []struct{ path, content, mode string }{
		{"/etc/app/app.conf", "mode=prod\n", "644"},
		{"/etc/secret/password", "s3cret", "400"},
		{saDir + "/namespace", ns, "644"},
	} {
		if got := env.execOK(t, id, "cat", f.path); got != f.content {
			t.Errorf("%s reads %q, want %q", f.path, got, f.content)
		}
		if got := strings.TrimSpace(env.execOK(t, id, "stat", "-L", "-c", "%a", f.path)); got != f.mode {
			t.Errorf("%s has mode %s, want %s", f.path, got, f.mode)
		}
	}
	if tok := env.execOK(t, id, "cat", saDir+"/token"); strings.Count(tok, ".") != 2 {
		t.Errorf("%s/token is no JWT: %q", saDir, tok)
	}
	if ca := env.execOK(t, id, "cat", saDir+"/ca.crt"); !strings.Contains(ca, "BEGIN CERTIFICATE") {
		t.Errorf("%s/ca.crt is no certificate: %q", saDir, ca)
	}

	// Secrets and tokens never touch the disk.
	mounts := env.execOK(t, id, "cat", "/proc/mounts")
	for _, dir := range []string{"/etc/secret", saDir} {
		if typ := containerMountType(mounts, dir); typ != "tmpfs" {
			t.Errorf("%s in the container is on %q, want tmpfs; /proc/mounts:\n%s", dir, typ, mounts)
		}
	}
	if typ := containerMountType(mounts, "/etc/secret"); typ == "tmpfs" && !containerMountReadOnly(mounts, "/etc/secret") {
		t.Errorf("/etc/secret is mounted read-write, want ro (readOnly: true); /proc/mounts:\n%s", mounts)
	}
	secretDir := filepath.Join(env.podDir(pod.UID), "volumes", "kubernetes.io~secret", "secret")
	if typ, err := hostMountType(secretDir); err != nil || typ != "tmpfs" {
		t.Errorf("host: %s is on %q (err %v), want tmpfs", secretDir, typ, err)
	}

	// The emptyDir is writable and lives under the pod's directory.
	env.execScript(t, id, "echo hello > /scratch/greeting")
	onHost := filepath.Join(env.podDir(pod.UID), "volumes", "kubernetes.io~empty-dir", "scratch", "greeting")
	if data, err := os.ReadFile(onHost); err != nil || string(data) != "hello\n" {
		t.Errorf("host: %s reads %q (err %v), want the container's write", onHost, data, err)
	}

	start = time.Now()
	env.scale(t, ns, "web", 0)
	env.eventually(t, 30*time.Second, env.podGone(ns, pod.Name))
	gone := since(start)
	took = env.eventually(t, 10*time.Second, env.podDirGone(pod.UID))
	t.Logf("scaled to 0 -> pod gone from the API in %s, its directory %s later", gone, took.Round(time.Millisecond))
}

// containerMountType is the file system type of the last mount at dir in
// the /proc/mounts text mounts, "" when there is none.
func containerMountType(mounts, dir string) string {
	typ := ""
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && unescapeMount(f[1]) == dir {
			typ = f[2]
		}
	}
	return typ
}

func containerMountReadOnly(mounts, dir string) bool {
	ro := false
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && unescapeMount(f[1]) == dir {
			ro = strings.HasPrefix(f[3], "ro,") || f[3] == "ro"
		}
	}
	return ro
}

// A pod reads its token from the default projected volume; the apiserver
// takes it, on loopback, as the pod's service account, bound to the pod.
func TestServiceAccountToken(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.createPod(t, ns, sleeper("caller", withGrace(1)))
	p, _ := env.readyPod(t, ns, "caller", 30*time.Second)
	id := runningID(t, p, "main")

	token := env.execOK(t, id, "cat", saDir+"/token")
	ca := env.execOK(t, id, "cat", saDir+"/ca.crt")
	// The pod's own ca.crt must verify the apiserver.
	cfg := rest.AnonymousClientConfig(env.adminRESTConfig(t))
	cfg.TLSClientConfig = rest.TLSClientConfig{CAData: []byte(ca)}
	cfg.BearerToken = token
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := apiContext()
	defer cancel()
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview at %s with the pod's token: %v", cfg.Host, err)
	}
	u := review.Status.UserInfo
	t.Logf("the pod's token authenticates at %s as %s, groups %v", cfg.Host, u.Username, u.Groups)
	if want := "system:serviceaccount:" + ns + ":default"; u.Username != want {
		t.Errorf("token user %q, want %q", u.Username, want)
	}
	// A bound token (TokenRequest for this pod), not a legacy secret.
	for key, want := range map[string]string{
		"authentication.kubernetes.io/pod-name": p.Name,
		"authentication.kubernetes.io/pod-uid":  string(p.UID),
	} {
		if got := u.Extra[key]; len(got) != 1 || got[0] != want {
			t.Errorf("token extra %s = %v, want [%s]", key, got, want)
		}
	}
}

// A ConfigMap change reaches the mounted file (berth aims at < 2 s); an
// env var from the same ConfigMap keeps its start-time value.
func TestConfigMapUpdate(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	cm := env.createConfigMap(t, ns, "settings", map[string]string{"color": "blue"})
	env.createPod(t, ns, sleeper("reader", withGrace(1),
		withVolume(configMapVolume("settings", "settings"), v1.VolumeMount{MountPath: "/etc/settings"}),
		withMain(func(c *v1.Container) {
			c.Env = []v1.EnvVar{{Name: "COLOR", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
				LocalObjectReference: v1.LocalObjectReference{Name: "settings"}, Key: "color",
			}}}}
		})))
	p, _ := env.readyPod(t, ns, "reader", 30*time.Second)
	id := runningID(t, p, "main")
	if got := env.execOK(t, id, "cat", "/etc/settings/color"); got != "blue" {
		t.Fatalf("/etc/settings/color reads %q, want blue", got)
	}
	// Upstream's layout: the key is a symlink through ..data.
	if got := strings.TrimSpace(env.execOK(t, id, "readlink", "/etc/settings/color")); got != "..data/color" {
		t.Errorf("/etc/settings/color links to %q, want ..data/color", got)
	}

	cm.Data["color"] = "green"
	ctx, cancel := apiContext()
	defer cancel()
	if _, err := env.kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update configmap: %v", err)
	}
	took := env.eventually(t, time.Minute, func() (bool, string) {
		got, err := env.exec(id, "cat", "/etc/settings/color")
		return err == nil && got == "green", "/etc/settings/color reads " + got
	})
	t.Logf("ConfigMap updated -> mounted file changed in %s (berth's target: < 2s)", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Logf("note: slower than berth's 2 s target")
	}
	if got := env.execOK(t, id, "sh", "-c", `echo "$COLOR"`); got != "blue\n" {
		t.Errorf("env COLOR is %q after the update, want its start-time value blue", got)
	}
}

// emptyDir data survives a restart of the container and goes with the pod.
func TestEmptyDirLifecycle(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	// The container ends (exit 3) when /tmp/exit appears in its own file
	// system; restartPolicy Always starts a new one.
	script := `echo started >> /data/starts; while [ ! -f /tmp/exit ]; do sleep 0.2; done; exit 3`
	env.createPod(t, ns, shellPod("scratch", script, withGrace(2),
		withVolume(emptyDirVolume("data"), v1.VolumeMount{MountPath: "/data"})))
	p, _ := env.readyPod(t, ns, "scratch", 30*time.Second)
	first := runningID(t, p, "main")
	env.execScript(t, first, "echo kept > /data/keep && touch /tmp/exit")

	start := time.Now()
	p, took := env.waitPod(t, ns, "scratch", 30*time.Second, func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		return podReady(p) && cs != nil && cs.RestartCount >= 1 && !strings.HasSuffix(cs.ContainerID, first),
			"want Ready again with restartCount >= 1 and a new container"
	})
	t.Logf("container exited -> restarted and Ready in %s", took.Round(time.Millisecond))
	second := runningID(t, p, "main")
	if got := env.execOK(t, second, "cat", "/data/keep"); got != "kept\n" {
		t.Errorf("after the restart /data/keep reads %q, want kept", got)
	}
	if got := env.execOK(t, second, "cat", "/data/starts"); got != "started\nstarted\n" {
		t.Errorf("after the restart /data/starts reads %q, want two starts", got)
	}
	if _, err := env.exec(second, "test", "-e", "/tmp/exit"); err == nil {
		t.Errorf("/tmp/exit exists in the new container: it should have its own file system")
	}

	dir := filepath.Join(env.podDir(p.UID), "volumes", "kubernetes.io~empty-dir", "data")
	if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
		t.Errorf("host: emptyDir file: %v", err)
	}
	start = time.Now()
	env.deletePod(t, p)
	env.eventually(t, 30*time.Second, env.podGone(ns, p.Name))
	env.eventually(t, 10*time.Second, env.podDirGone(p.UID))
	t.Logf("pod deleted -> gone with its emptyDir %s in %s", dir, since(start))
}

// A pod whose ConfigMap does not exist yet waits in ContainerCreating with
// FailedMount events, and starts once it is created.
func TestConfigMapMissing(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.createPod(t, ns, sleeper("waiter", withGrace(1),
		withVolume(configMapVolume("late", "late"), v1.VolumeMount{MountPath: "/etc/late"})))

	took := env.eventually(t, 30*time.Second, env.eventReasons(ns, "waiter", "FailedMount"))
	t.Logf("FailedMount event %s after the pod was created", took.Round(time.Millisecond))
	events, err := env.events(ns, "waiter")
	if err != nil {
		t.Fatal(err)
	}
	want := `MountVolume.SetUp failed for volume "late" : configmap "late" not found`
	for _, e := range events {
		if e.Reason == "FailedMount" && (e.Message != want || e.Type != v1.EventTypeWarning) {
			t.Errorf("event %s; want Warning with message %q", describeEvent(e), want)
		}
	}
	p, _ := env.waitPod(t, ns, "waiter", 10*time.Second, func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		return p.Status.Phase == v1.PodPending && cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "ContainerCreating",
			"want Pending with main waiting in ContainerCreating"
	})
	if cs, err := env.podContainers(p.UID); err != nil || len(cs) != 0 {
		t.Errorf("containers of a pod whose volume is missing: %s (err %v), want none", describeContainers(cs), err)
	}
	// Stays so for a moment: no container starts without its volume.
	time.Sleep(2 * time.Second)
	if p, err := env.getPod(ns, "waiter"); err != nil || p == nil || p.Status.Phase != v1.PodPending {
		t.Fatalf("pod without its ConfigMap: err %v, %v; want still Pending", err, p)
	}

	env.createConfigMap(t, ns, "late", map[string]string{"k": "v"})
	p, took = env.readyPod(t, ns, "waiter", 60*time.Second)
	t.Logf("ConfigMap created -> pod Ready in %s", took.Round(time.Millisecond))
	if got := env.execOK(t, runningID(t, p, "main"), "cat", "/etc/late/k"); got != "v" {
		t.Errorf("/etc/late/k reads %q, want v", got)
	}
}

// hostPath type checks fail as upstream's do and pass when they should.
func TestHostPathTypes(t *testing.T) {
	env := requireSuite(t)
	dir := t.TempDir() // removed after the namespace
	ns := env.namespace(t)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	subdir := filepath.Join(dir, "dir")
	if err := os.Mkdir(subdir, 0o755); err != nil {
		t.Fatal(err)
	}
	type hostPathCase struct {
		pod, path string
		typ       v1.HostPathType
		message   string // FailedMount message; "" when the pod must run
	}
	cases := []hostPathCase{
		{"dir-on-file", file, v1.HostPathDirectory, "is not a directory, it's a File"},
		{"file-on-dir", subdir, v1.HostPathFile, "is not a file, it's a Directory"},
		{"socket-on-file", file, v1.HostPathSocket, "is not a socket file, it's a File"},
		{"chardev-on-dir", subdir, v1.HostPathCharDev, "is not a character device, it's a Directory"},
		{"dir-or-create", filepath.Join(dir, "made", "here"), v1.HostPathDirectoryOrCreate, ""},
		{"file-or-create", filepath.Join(dir, "made-file"), v1.HostPathFileOrCreate, ""},
		{"chardev", "/dev/null", v1.HostPathCharDev, ""},
	}
	for _, c := range cases {
		env.createPod(t, ns, sleeper(c.pod, withGrace(1),
			withVolume(hostPathVolume("host", c.path, c.typ), v1.VolumeMount{MountPath: "/host"})))
	}
	for _, c := range cases {
		if c.message == "" {
			env.readyPod(t, ns, c.pod, 30*time.Second)
			continue
		}
		want := `MountVolume.SetUp failed for volume "host" : hostPath type check failed: ` + c.path + " " + c.message
		env.eventually(t, 30*time.Second, func() (bool, string) {
			events, err := env.events(ns, c.pod)
			if err != nil {
				return false, err.Error()
			}
			var seen []string
			for _, e := range events {
				if e.Reason == "FailedMount" && e.Message == want {
					return true, ""
				}
				seen = append(seen, describeEvent(e))
			}
			return false, "want FailedMount " + want + "; have [" + strings.Join(seen, "; ") + "]"
		})
		p, err := env.getPod(ns, c.pod)
		if err != nil || p == nil || p.Status.Phase != v1.PodPending {
			t.Errorf("pod %s with a hostPath type mismatch: err %v, %v; want Pending", c.pod, err, p)
		}
	}
	if fi, err := os.Stat(cases[4].path); err != nil || !fi.IsDir() {
		t.Errorf("DirectoryOrCreate: %s: %v, want a directory", cases[4].path, err)
	}
	if fi, err := os.Stat(cases[5].path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("FileOrCreate: %s: %v, want a file", cases[5].path, err)
	}
}

// subPath mounts a single file of a volume, and a subdirectory of an
// emptyDir (created on demand).
func TestSubPath(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.createConfigMap(t, ns, "files", map[string]string{"a.conf": "alpha", "b.conf": "beta"})
	env.createPod(t, ns, sleeper("sub", withGrace(1),
		withVolume(configMapVolume("files", "files"), v1.VolumeMount{MountPath: "/etc/a.conf", SubPath: "a.conf"}),
		withVolume(emptyDirVolume("work"), v1.VolumeMount{MountPath: "/work", SubPath: "one/two"}),
		withMain(func(c *v1.Container) {
			c.VolumeMounts = append(c.VolumeMounts, v1.VolumeMount{Name: "work", MountPath: "/whole"})
		})))
	p, _ := env.readyPod(t, ns, "sub", 30*time.Second)
	id := runningID(t, p, "main")
	if got := env.execOK(t, id, "cat", "/etc/a.conf"); got != "alpha" {
		t.Errorf("/etc/a.conf reads %q, want alpha", got)
	}
	if got := strings.TrimSpace(env.execOK(t, id, "stat", "-c", "%F", "/etc/a.conf")); got != "regular file" {
		t.Errorf("/etc/a.conf is a %q, want a regular file", got)
	}
	if out, err := env.exec(id, "ls", "-a", "/etc"); err != nil || strings.Contains(out, "b.conf") || strings.Contains(out, "..data") {
		t.Errorf("/etc lists %q (err %v): only a.conf should come from the volume", out, err)
	}
	env.execScript(t, id, "echo deep > /work/f")
	if got := env.execOK(t, id, "cat", "/whole/one/two/f"); got != "deep\n" {
		t.Errorf("/whole/one/two/f reads %q, want what was written to /work/f", got)
	}
}

// After berth is killed and pods are deleted while it is down, gracefully
// and by force (gone from the API before berth is back), berth stops their
// containers and leaves no pod directory and no mount behind. A third pod
// is force-deleted and also removed from the runtime, as after a host
// reboot: only its directory (with tmpfs mounts) tells of it.
func TestOrphanedPodDirs(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.ensureBerthRuns(t)
	env.createSecret(t, ns, "s", map[string]string{"k": "v"})
	opts := []podOption{
		withGrace(2),
		withVolume(emptyDirVolume("scratch"), v1.VolumeMount{MountPath: "/scratch"}),
		withVolume(v1.Volume{Name: "secret", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "s"}}},
			v1.VolumeMount{MountPath: "/etc/secret"}),
	}
	graceful := env.createPod(t, ns, sleeper("graceful", opts...))
	forced := env.createPod(t, ns, sleeper("forced", opts...))
	stale := env.createPod(t, ns, sleeper("stale", opts...))
	all := []*v1.Pod{graceful, forced, stale}
	for _, p := range all {
		env.readyPod(t, ns, p.Name, 30*time.Second)
		if mounts, err := hostMountsUnder(env.podDir(p.UID)); err != nil || len(mounts) < 2 {
			t.Fatalf("pod %s: host mounts under its directory %v (err %v); want the secret and token tmpfs", p.Name, mounts, err)
		}
	}

	if err := env.berth.kill(); err != nil {
		t.Fatal(err)
	}
	env.deletePod(t, graceful)
	zero := int64(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []*v1.Pod{forced, stale} {
		if err := env.kube.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatalf("force-delete %s: %v", p.Name, err)
		}
		env.eventually(t, 10*time.Second, env.podGone(ns, p.Name))
	}
	sbs, err := env.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodUID: string(stale.UID)}})
	if err != nil || len(sbs) == 0 {
		t.Fatalf("sandboxes of %s: %v (err %v)", stale.Name, sbs, err)
	}
	for _, sb := range sbs {
		if err := env.rt.StopPodSandbox(ctx, sb.Id); err != nil {
			t.Fatalf("stop sandbox of %s: %v", stale.Name, err)
		}
		if err := env.rt.RemovePodSandbox(ctx, sb.Id); err != nil {
			t.Fatalf("remove sandbox of %s: %v", stale.Name, err)
		}
	}

	from := env.berth.logSize()
	start := time.Now()
	if err := env.berth.start(); err != nil {
		t.Fatal(err)
	}
	// The pod deleted gracefully stays in the API until its containers
	// have stopped, as upstream's status manager keeps it (canBeDeleted):
	// its controller must not replace it while it still runs.
	var early string
	env.eventually(t, 45*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, graceful.Name)
		if err != nil {
			return false, err.Error()
		}
		cs, err := env.podContainers(graceful.UID)
		if err != nil {
			return false, err.Error()
		}
		if p == nil && len(runningOnly(cs)) > 0 && early == "" {
			early = fmt.Sprintf("%s after berth's restart: pod gone from the API while the runtime still runs %s",
				since(start), describeContainers(runningOnly(cs)))
		}
		inAPI := "gone from the API"
		if p != nil {
			inAPI = describePod(p)
		}
		return p == nil && len(cs) == 0, fmt.Sprintf("graceful: %s; runtime: %s", inAPI, describeContainers(cs))
	})
	if early != "" {
		t.Errorf("pod deleted while berth was down: %s", early)
	}
	env.eventually(t, 30*time.Second, env.noContainers(forced.UID, false))
	for _, p := range all {
		env.eventually(t, 30*time.Second, env.podDirGone(p.UID))
		t.Logf("pod %s: directory and mounts gone %s after berth's restart", p.Name, since(start))
	}

	// An orphan is reported once, not on every housekeeping pass.
	time.Sleep(3 * time.Second)
	seen := map[string]int{}
	var repeated []string
	for _, line := range strings.Split(env.berth.logTail(from, 5000), "\n") {
		msg := logMessage(line)
		if !strings.Contains(strings.ToLower(msg), "orphan") {
			continue
		}
		for _, p := range all {
			if strings.Contains(line, string(p.UID)) {
				key := p.Name + ": " + msg
				if seen[key]++; seen[key] == 2 {
					repeated = append(repeated, line)
				}
			}
		}
	}
	t.Logf("berth's messages about orphans after the restart: %v", seen)
	if len(repeated) > 0 {
		t.Errorf("berth repeats messages about orphaned pods:\n%s", strings.Join(repeated, "\n"))
	}
}

// logMessage is the message of a klog line (`I1126 ... file.go:12] "msg" k=v`).
func logMessage(line string) string {
	_, rest, ok := strings.Cut(line, "] ")
	if !ok {
		return ""
	}
	if msg, err := strconv.QuotedPrefix(rest); err == nil {
		if m, err := strconv.Unquote(msg); err == nil {
			return m
		}
	}
	return rest
}
