package runtime

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/container"
)

func TestContainerFromStatus(t *testing.T) {
	t0 := time.Unix(100, 0)
	labels := map[string]string{container.LabelContainerName: "app", container.LabelPodUID: "u"}
	ann := map[string]string{container.AnnotationContainerHash: "1f", container.AnnotationContainerRestartCount: "4"}
	tests := []struct {
		name string
		in   *runtimeapi.ContainerStatus
		want *container.ContainerStatus
	}{
		{
			name: "exited",
			in: &runtimeapi.ContainerStatus{
				Id: "c1", Metadata: &runtimeapi.ContainerMetadata{Name: "meta-name"}, State: runtimeapi.ContainerState_CONTAINER_EXITED,
				CreatedAt: t0.UnixNano(), StartedAt: t0.Add(time.Second).UnixNano(), FinishedAt: t0.Add(2 * time.Second).UnixNano(),
				ExitCode: 137, Reason: "OOMKilled", Message: "oom",
				Image:    &runtimeapi.ImageSpec{Image: "docker.io/library/busybox:1.0", UserSpecifiedImage: "busybox:1.0"},
				ImageRef: "docker.io/library/busybox@sha256:1", ImageId: "sha256:2", LogPath: "/logs/app/4.log",
				Labels: labels, Annotations: ann,
			},
			want: &container.ContainerStatus{
				ID: "c1", Name: "app", SandboxID: "sb", State: container.StateExited,
				CreatedAt: t0, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(2 * time.Second),
				ExitCode: 137, Reason: "OOMKilled", Message: "oom",
				Image: "busybox:1.0", ImageRef: "sha256:2", Hash: 0x1f, RestartCount: 4, LogPath: "/logs/app/4.log",
			},
		},
		{
			name: "created: no start time, runtime's image name, no labels",
			in: &runtimeapi.ContainerStatus{
				Id: "c2", Metadata: &runtimeapi.ContainerMetadata{Name: "meta-name"}, State: runtimeapi.ContainerState_CONTAINER_CREATED,
				CreatedAt: t0.UnixNano(), StartedAt: 12345, ExitCode: 1,
				Image: &runtimeapi.ImageSpec{Image: "docker.io/library/busybox:1.0"}, ImageRef: "sha256:3",
			},
			want: &container.ContainerStatus{
				ID: "c2", Name: "meta-name", SandboxID: "sb", State: container.StateCreated, CreatedAt: t0,
				Image: "docker.io/library/busybox:1.0", ImageRef: "sha256:3",
			},
		},
		{
			name: "unknown state, malformed annotations",
			in: &runtimeapi.ContainerStatus{
				Id: "c3", State: runtimeapi.ContainerState_CONTAINER_UNKNOWN, Labels: labels,
				Annotations: map[string]string{container.AnnotationContainerHash: "zz", container.AnnotationContainerRestartCount: "x"},
			},
			want: &container.ContainerStatus{ID: "c3", Name: "app", SandboxID: "sb", State: container.StateUnknown},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := containerFromStatus(tt.in, "sb"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}

	listed := containerFromList(&runtimeapi.Container{
		Id: "c1", PodSandboxId: "sb", State: runtimeapi.ContainerState_CONTAINER_RUNNING, CreatedAt: t0.UnixNano(),
		Image: &runtimeapi.ImageSpec{Image: "busybox:1.0"}, ImageRef: "sha256:1", Labels: labels, Annotations: ann,
	})
	want := &container.ContainerStatus{ID: "c1", Name: "app", SandboxID: "sb", State: container.StateRunning, CreatedAt: t0,
		Image: "busybox:1.0", ImageRef: "sha256:1", Hash: 0x1f, RestartCount: 4}
	if !reflect.DeepEqual(listed, want) {
		t.Errorf("containerFromList = %+v\nwant %+v", listed, want)
	}
}

func TestSandboxFromStatus(t *testing.T) {
	t0 := time.Unix(100, 0)
	ready := &runtimeapi.PodSandboxStatus{
		Id: "s1", Metadata: &runtimeapi.PodSandboxMetadata{Attempt: 2}, State: runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: t0.UnixNano(),
		Network: &runtimeapi.PodSandboxNetworkStatus{Ip: "10.0.0.2", AdditionalIps: []*runtimeapi.PodIP{{Ip: "fd00::2"}}},
		Linux:   &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD}}},
	}
	want := &container.SandboxStatus{ID: "s1", State: container.SandboxReady, Attempt: 2, CreatedAt: t0, IPs: []string{"10.0.0.2", "fd00::2"}}
	if got := sandboxFromStatus(ready); !reflect.DeepEqual(got, want) {
		t.Errorf("ready: %+v", got)
	}
	stopped := &runtimeapi.PodSandboxStatus{
		Id: "s0", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY, Network: &runtimeapi.PodSandboxNetworkStatus{Ip: "10.0.0.1"},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}},
	}
	want = &container.SandboxStatus{ID: "s0", State: container.SandboxNotReady, HostNetwork: true}
	if got := sandboxFromStatus(stopped); !reflect.DeepEqual(got, want) {
		t.Errorf("stopped (IP must not be reported): %+v", got)
	}
}

func TestTerminationMessage(t *testing.T) {
	dir := t.TempDir()
	msgFile := filepath.Join(dir, "msg")
	emptyFile := filepath.Join(dir, "empty")
	logFile := filepath.Join(dir, "0.log")
	_ = os.WriteFile(msgFile, []byte("custom message"), 0o644)
	_ = os.WriteFile(emptyFile, nil, 0o644)
	var log strings.Builder
	for i := range 100 {
		log.WriteString("2024-01-01T00:00:00.000000000Z stdout F line " + string(rune('0'+i%10)) + "\n")
	}
	log.WriteString("2024-01-01T00:00:00.000000000Z stderr P part one \n")
	log.WriteString("2024-01-01T00:00:00.000000000Z stderr F and two\n")
	_ = os.WriteFile(logFile, []byte(log.String()), 0o644)

	status := func(policy, mountFrom string, exit int32) *runtimeapi.ContainerStatus {
		s := &runtimeapi.ContainerStatus{
			State: runtimeapi.ContainerState_CONTAINER_EXITED, ExitCode: exit, LogPath: logFile,
			Annotations: map[string]string{
				container.AnnotationTerminationMessagePath: "/dev/termination-log",
				container.AnnotationTerminationMsgPolicy:   policy,
			},
		}
		if mountFrom != "" {
			s.Mounts = []*runtimeapi.Mount{{HostPath: mountFrom, ContainerPath: "/dev/termination-log"}}
		}
		return s
	}
	if got := terminationMessage(status("File", msgFile, 1)); got != "custom message" {
		t.Errorf("from file: %q", got)
	}
	if got := terminationMessage(status("File", emptyFile, 1)); got != "" {
		t.Errorf("empty file, File policy: %q", got)
	}
	if got := terminationMessage(status("FallbackToLogsOnError", msgFile, 1)); got != "custom message" {
		t.Errorf("file wins over logs: %q", got)
	}
	if got := terminationMessage(status("FallbackToLogsOnError", emptyFile, 0)); got != "" {
		t.Errorf("success does not fall back: %q", got)
	}
	// The last 80 records: the partial one and its end are two of them.
	got := terminationMessage(status("FallbackToLogsOnError", emptyFile, 2))
	if lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n"); len(lines) != 79 || lines[78] != "part one and two" || lines[77] != "line 9" || lines[0] != "line 2" {
		t.Errorf("fallback to logs: %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	if got := terminationMessage(status("FallbackToLogsOnError", filepath.Join(dir, "missing"), 2)); !strings.HasSuffix(got, "part one and two\n") {
		t.Errorf("missing file falls back too: %q", got)
	}
	if got := terminationMessage(status("File", "", 1)); got != "" {
		t.Errorf("no mount: %q", got)
	}

	// Output without a final newline stays so ("echo -n DONE; false").
	_ = os.WriteFile(logFile, []byte("2024-01-01T00:00:00Z stdout P DONE\n"), 0o644)
	if got := terminationMessage(status("FallbackToLogsOnError", emptyFile, 1)); got != "DONE" {
		t.Errorf("partial last line: %q, want DONE", got)
	}
	// Rotated files count too.
	_ = os.WriteFile(logFile+".20240101-000000", []byte("2024-01-01T00:00:00Z stdout F older\n"), 0o644)
	if got := terminationMessage(status("FallbackToLogsOnError", emptyFile, 1)); got != "older\nDONE" {
		t.Errorf("rotated log: %q, want %q", got, "older\nDONE")
	}
	if got := terminationMessage(&runtimeapi.ContainerStatus{ExitCode: 1, LogPath: filepath.Join(dir, "gone", "0.log"),
		Annotations: map[string]string{container.AnnotationTerminationMsgPolicy: "FallbackToLogsOnError"}}); !strings.HasPrefix(got, "Error on reading termination message from logs: ") {
		t.Errorf("missing log: %q", got)
	}
	_ = os.Remove(logFile + ".20240101-000000")

	// The message keeps the last 2 KiB.
	long := strings.Repeat("x", 3000)
	_ = os.WriteFile(logFile, []byte("2024-01-01T00:00:00Z stdout F "+long+"\n"), 0o644)
	if got := terminationMessage(status("FallbackToLogsOnError", emptyFile, 2)); len(got) != maxTerminationMessageLogLength {
		t.Errorf("long log line: message of %d bytes", len(got))
	}
}

func TestRestartCountFromLogDir(t *testing.T) {
	dir := t.TempDir()
	if got := restartCountFromLogDir(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("missing dir: %d", got)
	}
	for _, f := range []string{"0.log", "3.log.20240101-000000", "2.log", "x.log", "10"} {
		_ = os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	_ = os.Mkdir(filepath.Join(dir, "9.log"), 0o755)
	if got := restartCountFromLogDir(dir); got != 4 {
		t.Errorf("restartCountFromLogDir = %d, want 4", got)
	}
}
