package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FloorOptions describe the pods the floor makes: as close as a plain CRI
// client gets to what a kubelet asks for a one-container BestEffort pod.
type FloorOptions struct {
	Image string // the container image, already present
	// Dir holds each pod's log directory and the files a kubelet would
	// bind-mount (/etc/hosts, /dev/termination-log, the service account
	// token directory).
	Dir string
	// CgroupParent is the parent of each pod's cgroup; the pod's is
	// CgroupParent/pod<uid>.
	CgroupParent string
	Namespace    string
}

// FloorPod is one pod the floor made.
type FloorPod struct {
	SandboxID string
	Start     time.Time     // RunPodSandbox called
	Took      time.Duration // until StartContainer returned
}

// Floor makes pods through CRI alone: RunPodSandbox, CreateContainer,
// StartContainer, as a kubelet does for a pod whose image is present.
type Floor struct {
	c    *Client
	opts FloorOptions
}

// NewFloor returns a floor over c.
func NewFloor(c *Client, opts FloorOptions) *Floor { return &Floor{c: c, opts: opts} }

// Run makes one pod and returns how long the three calls took.
func (f *Floor) Run(ctx context.Context, name string) (FloorPod, error) {
	uid := string(uuid.NewUUID())
	podDir := filepath.Join(f.opts.Dir, uid)
	mounts, err := f.podFiles(podDir)
	if err != nil {
		return FloorPod{}, err
	}
	sandbox := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: f.opts.Namespace, Uid: uid},
		Hostname: name,
		Labels: map[string]string{
			"io.kubernetes.pod.name":      name,
			"io.kubernetes.pod.namespace": f.opts.Namespace,
			LabelPodUID:                   uid,
			"berthbench":                  "floor",
		},
		LogDirectory: filepath.Join(podDir, "logs"),
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}, Searches: []string{f.opts.Namespace + ".svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: filepath.Join(f.opts.CgroupParent, "pod"+uid),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
			Resources: &runtimeapi.LinuxContainerResources{CpuShares: 2},
		},
	}
	container := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
		Image:    &runtimeapi.ImageSpec{Image: f.opts.Image, UserSpecifiedImage: f.opts.Image},
		Command:  []string{"sleep", "3600"},
		Envs: []*runtimeapi.KeyValue{
			{Key: "KUBERNETES_SERVICE_HOST", Value: []byte("10.0.0.1")},
			{Key: "KUBERNETES_SERVICE_PORT", Value: []byte("443")},
			{Key: "KUBERNETES_PORT", Value: []byte("tcp://10.0.0.1:443")},
		},
		Mounts: mounts,
		Labels: map[string]string{
			"io.kubernetes.pod.name":      name,
			"io.kubernetes.pod.namespace": f.opts.Namespace,
			LabelPodUID:                   uid,
			LabelContainerName:            "c",
		},
		LogPath: "c/0.log",
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{CpuShares: 2, OomScoreAdj: 1000, CpuPeriod: 100000},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				MaskedPaths:      []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"},
				ReadonlyPaths:    []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			},
		},
	}

	p := FloorPod{Start: time.Now()}
	rs, err := f.c.RT.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandbox})
	if err != nil {
		return p, fmt.Errorf("run sandbox %s: %w", name, err)
	}
	p.SandboxID = rs.PodSandboxId
	cc, err := f.c.RT.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: rs.PodSandboxId, Config: container, SandboxConfig: sandbox})
	if err != nil {
		return p, fmt.Errorf("create container in %s: %w", name, err)
	}
	if _, err := f.c.RT.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		return p, fmt.Errorf("start container in %s: %w", name, err)
	}
	p.Took = time.Since(p.Start)
	return p, nil
}

// podFiles writes what a kubelet would bind-mount into the container.
func (f *Floor) podFiles(dir string) ([]*runtimeapi.Mount, error) {
	token := filepath.Join(dir, "token")
	if err := os.MkdirAll(token, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	files := map[string]string{
		"etc-hosts":       "127.0.0.1\tlocalhost\n",
		"termination-log": "",
		"token/token":     "x",
		"token/ca.crt":    "x",
		"token/namespace": f.opts.Namespace,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	return []*runtimeapi.Mount{
		{ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", HostPath: token, Readonly: true},
		{ContainerPath: "/etc/hosts", HostPath: filepath.Join(dir, "etc-hosts")},
		{ContainerPath: "/dev/termination-log", HostPath: filepath.Join(dir, "termination-log")},
	}, nil
}

// Burst makes n pods at once, one goroutine each, and returns them with
// the time from the start of the burst until the last was running.
func (f *Floor) Burst(ctx context.Context, prefix string, n int) ([]FloorPod, time.Duration, error) {
	pods := make([]FloorPod, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pods[i], errs[i] = f.Run(ctx, fmt.Sprintf("%s-%d", prefix, i))
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return pods, took, err
		}
	}
	return pods, took, nil
}

// Remove stops and removes the floor's pods and their files and cgroups.
func (f *Floor) Remove(ctx context.Context, pods []FloorPod) error {
	var ids []string
	for _, p := range pods {
		if p.SandboxID != "" {
			ids = append(ids, p.SandboxID)
		}
	}
	err := f.c.RemoveSandboxes(ctx, ids, 16)
	_ = os.RemoveAll(f.opts.Dir)
	RemoveCgroups(f.opts.CgroupParent)
	return err
}

// RemoveCgroups removes the empty pod cgroups under parent in every
// hierarchy (runc removes the containers' own, not the pod's).
func RemoveCgroups(parent string) {
	hs, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hs {
		dir := filepath.Join("/sys/fs/cgroup", h.Name(), parent)
		pods, _ := os.ReadDir(dir)
		for _, p := range pods {
			if p.IsDir() {
				_ = os.Remove(filepath.Join(dir, p.Name()))
			}
		}
	}
}
