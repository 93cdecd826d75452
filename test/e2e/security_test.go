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
