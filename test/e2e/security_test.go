package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// exec runs cmd in container id through CRI and returns its stdout.
func (env *environment) exec(t *testing.T, id string, cmd ...string) string {
	t.Helper()
	ctx, cancel := criContext()
	defer cancel()
	stdout, stderr, err := env.rt.ExecSync(ctx, id, cmd, 5*time.Second)
	if err != nil {
		t.Fatalf("exec %v in %s: %v (stderr %q)", cmd, shortID(id), err, stderr)
	}
	return string(stdout)
}

// mountsContaining lists the host's mount points whose path contains s.
func mountsContaining(t *testing.T, s string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && strings.Contains(fields[4], s) {
			out = append(out, fields[4])
		}
	}
	return out
}

// withVolume adds an emptyDir volume name.
func withVolume(name string) func(*v1.Pod) {
	return func(pod *v1.Pod) {
		pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{Name: name, VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
	}
}

// withMount mounts volume at path (subPath if set) in container "main".
func withMount(volume, path, subPath string) func(*v1.Pod) {
	return func(pod *v1.Pod) {
		c := &pod.Spec.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, v1.VolumeMount{Name: volume, MountPath: path, SubPath: subPath})
	}
}

// initWithVolume is an init container running script with volume at /data.
func initWithVolume(volume, script string) v1.Container {
	c := shellContainer("prepare", script)
	c.VolumeMounts = []v1.VolumeMount{{Name: volume, MountPath: "/data"}}
	return c
}

// waitingWith is a condition on container cname: waiting with reason and
// message.
func waitingWith(cname, reason, message string) func(*v1.Pod) (bool, string) {
	return func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, cname)
		ok := cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == reason && cs.State.Waiting.Message == message
		return ok, fmt.Sprintf("want %s waiting(%s: %s); %s", cname, reason, message, describePod(p))
	}
}

// An init container turns the subPath into a symlink to the host's /: the
// app container is not started (CreateContainerConfigError, upstream's
// message), nothing of the host is mounted.
func TestSubPathSymlinkToRootNotMounted(t *testing.T) {
	b := startBerth(t)
	b.writePod(shellPod("subpath-escape", "ls /mnt; sleep 3600",
		withVolume("data"),
		withInit(initWithVolume("data", "ln -s / /data/escape")),
		withMount("data", "/mnt", "escape")))
	b.eventually(20*time.Second, b.podCond("subpath-escape",
		waitingWith("main", "CreateContainerConfigError", `failed to prepare subPath for volumeMount "data" of container "main"`)))
	if cs, err := b.env.containersNamed("subpath-escape", "main"); err != nil || len(cs) > 0 {
		t.Errorf("container main was created: %s %v", describeContainers(cs), err)
	}
	for _, mp := range mountsContaining(t, b.rootDir+"/pods/") {
		if strings.Contains(mp, "/volume-subpaths/") {
			t.Errorf("a subPath mount was made: %s", mp)
		}
	}
}

// A subPath is bind-mounted under the pod's volume-subpaths directory and
// shows the volume's directory; the mounts go with the pod, also when berth
// was killed and the pod removed while it was down.
func TestSubPathMountedAndCleanedUp(t *testing.T) {
	b := startBerth(t)
	b.writePod(shellPod("subpath-ok", "sleep 3600",
		withVolume("data"),
		withInit(initWithVolume("data", "mkdir -p /data/dir && echo inside > /data/dir/marker")),
		withMount("data", "/mnt", "dir")))
	c := b.runningContainer("subpath-ok", "main", 20*time.Second)
	if out := b.env.exec(t, c.Id, "cat", "/mnt/marker"); strings.TrimSpace(out) != "inside" {
		t.Errorf("/mnt/marker: %q, want inside", out)
	}
	uid := c.Labels[labelPodUID]
	want := b.rootDir + "/pods/" + uid + "/volume-subpaths/data/main/0"
	if m := mountsContaining(t, b.rootDir+"/pods/"+uid+"/volume-subpaths/"); len(m) != 1 || m[0] != want {
		t.Fatalf("subPath mounts %v, want [%s]", m, want)
	}

	b.kill()
	b.removeManifest("subpath-ok.yaml")
	b.start()
	b.eventually(20*time.Second, b.env.podGone("subpath-ok"))
	b.eventually(10*time.Second, func() (bool, string) {
		m := mountsContaining(t, b.rootDir+"/pods/"+uid)
		_, err := os.Stat(b.rootDir + "/pods/" + uid)
		return len(m) == 0 && os.IsNotExist(err), fmt.Sprintf("mounts left %v, pod directory: %v", m, err)
	})
}

// addConfig appends KubeletConfiguration fields (YAML lines) to berth's
// config file; call it before start.
func (b *berth) addConfig(yaml string) {
	b.t.Helper()
	f, err := os.OpenFile(b.configPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		b.t.Fatal(err)
	}
}

// rejectedWith is a condition: the pod failed admission with reason and
// message.
func rejectedWith(reason, message string) func(*v1.Pod) (bool, string) {
	return func(p *v1.Pod) (bool, string) {
		ok := p.Status.Phase == v1.PodFailed && p.Status.Reason == reason && p.Status.Message == message
		return ok, fmt.Sprintf("want Failed %s %q; %s message %q", reason, message, describePod(p), p.Status.Message)
	}
}

// seccompMode is the Seccomp line of /proc/1/status in container id: 0
// none, 2 a filter.
func (env *environment) seccompMode(t *testing.T, id string) string {
	t.Helper()
	for _, line := range strings.Split(env.exec(t, id, "cat", "/proc/1/status"), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Seccomp line in /proc/1/status of %s", shortID(id))
	return ""
}

// With seccompDefault a container without a profile runs under the
// runtime's default filter; one that asks for Unconfined does not.
func TestSeccompDefault(t *testing.T) {
	b := newBerth(t)
	b.addConfig("seccompDefault: true\n")
	b.start()
	b.writePod(shellPod("seccomp-default", "sleep 3600"))
	b.writePod(shellPod("seccomp-unconfined", "sleep 3600", func(p *v1.Pod) {
		p.Spec.SecurityContext = &v1.PodSecurityContext{SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeUnconfined}}
	}))
	c := b.runningContainer("seccomp-default", "main", 20*time.Second)
	if got := b.env.seccompMode(t, c.Id); got != "2" {
		t.Errorf("container without a profile: Seccomp %s, want 2 (filter)", got)
	}
	c = b.runningContainer("seccomp-unconfined", "main", 20*time.Second)
	if got := b.env.seccompMode(t, c.Id); got != "0" {
		t.Errorf("Unconfined container: Seccomp %s, want 0", got)
	}
}

// Without seccompDefault (upstream's default) a container without a
// profile runs unconfined.
func TestSeccompDefaultOff(t *testing.T) {
	b := startBerth(t)
	b.writePod(shellPod("seccomp-none", "sleep 3600"))
	c := b.runningContainer("seccomp-none", "main", 20*time.Second)
	if got := b.env.seccompMode(t, c.Id); got != "0" {
		t.Errorf("Seccomp %s, want 0", got)
	}
}

// runtimeSupportsUserNamespaces asks the suite's runtime whether its
// default handler supports user namespaces (containerd 1.x lists no
// handlers: no).
func (env *environment) runtimeSupportsUserNamespaces(t *testing.T) bool {
	t.Helper()
	ctx, cancel := criContext()
	defer cancel()
	resp, err := env.rt.Status(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range resp.GetRuntimeHandlers() {
		if h.GetName() == "" {
			return h.GetFeatures().GetUserNamespaces()
		}
	}
	return false
}

// hostUsers: false never runs in the node's user namespace. On a runtime
// without user namespace support (containerd 1.6) the pod gets no sandbox
// (upstream's FailedCreatePodSandBox event, the pod stays Pending); on one
// with it (containerd 2 with runc >= 1.2) the pod runs with root mapped to
// a block of host IDs from 65536 on, and its neighbour in the node's.
func TestHostUsersFalse(t *testing.T) {
	b := startBerth(t)
	b.writePod(shellPod("userns", "sleep 3600", func(p *v1.Pod) { p.Spec.HostUsers = ptrTo(false) }))
	b.writePod(shellPod("userns-neighbour", "sleep 3600"))
	neighbour := b.runningContainer("userns-neighbour", "main", 20*time.Second)
	if got := strings.Fields(b.env.exec(t, neighbour.Id, "cat", "/proc/self/uid_map")); len(got) != 3 || got[0] != "0" || got[1] != "0" {
		t.Errorf("neighbour's uid_map %q, want the node's (0 0 4294967295)", got)
	}

	if b.env.runtimeSupportsUserNamespaces(t) {
		c := b.runningContainer("userns", "main", 30*time.Second)
		got := strings.Fields(b.env.exec(t, c.Id, "cat", "/proc/self/uid_map"))
		if len(got) != 3 || got[0] != "0" || got[1] == "0" || got[2] != "65536" {
			t.Fatalf("uid_map %q, want 0 <host ID >= 65536> 65536", got)
		}
		t.Logf("user namespace: container root is host UID %s", got[1])
		return
	}
	t.Log("the runtime does not support user namespaces: the pod must be refused")
	b.eventually(20*time.Second, b.logMentions(`reason="FailedCreatePodSandBox"`,
		"Failed to create pod sandbox: can't set `spec.hostUsers: false`, runtime does not support user namespaces"))
	p, err := b.pod("userns")
	if err != nil || p == nil {
		t.Fatalf("pod userns: %v %v", p, err)
	}
	if p.Status.Phase != v1.PodPending {
		t.Errorf("phase %s, want Pending: %s", p.Status.Phase, describePod(p))
	}
	if sbs, err := b.env.sandboxes("userns"); err != nil || len(sbs) > 0 {
		t.Errorf("sandboxes of the refused pod: %s %v", describeSandboxes(sbs), err)
	}
}

// A pod asking for an AppArmor profile on a host without AppArmor is
// refused at admission with upstream's reason and message; Unconfined is
// fine. Skipped on a host with AppArmor.
func TestAppArmorRefusedWithoutAppArmor(t *testing.T) {
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.HasPrefix(string(b), "Y") {
		t.Skip("this host has AppArmor")
	}
	b := startBerth(t)
	b.writePod(shellPod("apparmor", "sleep 3600", func(p *v1.Pod) {
		p.Spec.SecurityContext = &v1.PodSecurityContext{AppArmorProfile: &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeRuntimeDefault}}
	}))
	b.writePod(shellPod("apparmor-unconfined", "sleep 3600", func(p *v1.Pod) {
		p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{AppArmorProfile: &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeUnconfined}}
	}))
	b.eventually(20*time.Second, b.podCond("apparmor",
		rejectedWith("AppArmor", "Pod was rejected: Cannot enforce AppArmor: AppArmor is not enabled on the host")))
	b.runningContainer("apparmor-unconfined", "main", 20*time.Second)
	if cs, err := b.env.containers("apparmor"); err != nil || len(cs) > 0 {
		t.Errorf("containers of the refused pod: %s %v", describeContainers(cs), err)
	}
}

// An unsafe sysctl is refused at admission (SysctlForbidden, upstream's
// message); a safe one is applied in the pod; an unsafe one allowed by
// allowedUnsafeSysctls is applied too.
func TestSysctlsStatic(t *testing.T) {
	b := newBerth(t)
	b.addConfig("allowedUnsafeSysctls: [\"kernel.msg*\"]\n")
	b.start()
	sysctls := func(s ...v1.Sysctl) func(*v1.Pod) {
		return func(p *v1.Pod) { p.Spec.SecurityContext = &v1.PodSecurityContext{Sysctls: s} }
	}
	b.writePod(shellPod("sysctl-unsafe", "sleep 3600", sysctls(v1.Sysctl{Name: "kernel.sem", Value: "250 32000 32 128"})))
	b.writePod(shellPod("sysctl-safe", "sleep 3600", sysctls(
		v1.Sysctl{Name: "kernel/shm_rmid_forced", Value: "1"},
		v1.Sysctl{Name: "kernel.msgmax", Value: "12345"})))
	b.eventually(20*time.Second, b.podCond("sysctl-unsafe",
		rejectedWith("SysctlForbidden", `Pod was rejected: forbidden sysctl: "kernel.sem" not allowlisted`)))
	c := b.runningContainer("sysctl-safe", "main", 20*time.Second)
	for file, want := range map[string]string{"/proc/sys/kernel/shm_rmid_forced": "1", "/proc/sys/kernel/msgmax": "12345"} {
		if got := strings.TrimSpace(b.env.exec(t, c.Id, "cat", file)); got != want {
			t.Errorf("%s in the pod: %q, want %q", file, got, want)
		}
	}
}

// A manifest whose UID would leave the root dir is refused with a clear
// log line; the other pods run.
func TestStaticPodUIDValidated(t *testing.T) {
	b := startBerth(t)
	bad := shellPod("bad-uid", "sleep 3600")
	bad.UID = "../../escape"
	b.writePod(bad)
	b.writePod(shellPod("good-uid", "sleep 3600"))
	b.runningContainer("good-uid", "main", 20*time.Second)
	b.eventually(10*time.Second, b.logMentions(`metadata.uid: Invalid value: \"../../escape\"`))
	if cs, err := b.env.containers("bad-uid"); err != nil || len(cs) > 0 {
		t.Errorf("containers of the refused pod: %s %v", describeContainers(cs), err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// With protectKernelDefaults berth starts on a node whose kernel settings
// are the ones the kubelet wants (the refusal of differing ones is unit
// tested: changing this shared host's settings would disturb others).
func TestProtectKernelDefaultsStartsWhenSettingsMatch(t *testing.T) {
	for file, want := range map[string]string{
		"vm/overcommit_memory": "1", "vm/panic_on_oom": "0", "kernel/panic": "10", "kernel/panic_on_oops": "1",
		"kernel/keys/root_maxkeys": "1000000", "kernel/keys/root_maxbytes": "25000000",
	} {
		if b, err := os.ReadFile("/proc/sys/" + file); err != nil || strings.TrimSpace(string(b)) != want {
			t.Skipf("%s is %q here, not %s", file, b, want)
		}
	}
	b := newBerth(t)
	b.addConfig("protectKernelDefaults: true\n")
	b.start()
	b.writePod(shellPod("kernel-defaults", "sleep 3600"))
	b.runningContainer("kernel-defaults", "main", 20*time.Second)
}
