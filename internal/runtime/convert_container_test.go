package runtime

import (
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/container"
)

func ptrTo[T any](v T) *T { return &v }

func TestContainerConfig(t *testing.T) {
	grace := int64(30)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "uid-1", Labels: map[string]string{"app": "web"}},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []v1.Container{{
				Name:       "app",
				Image:      "busybox:1.0",
				Command:    []string{"sh", "-c", "echo $(MSG) $$(MSG)"},
				Args:       []string{"$(MISSING)", "$(MSG)"},
				WorkingDir: "/work",
				Env:        []v1.EnvVar{{Name: "MSG", Value: "hi"}},
				Ports:      []v1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: v1.ProtocolTCP}},
				Stdin:      true, StdinOnce: true, TTY: true,
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: v1.TerminationMessageReadFile,
			}},
		},
	}
	c := &pod.Spec.Containers[0]
	mounts := []*runtimeapi.Mount{{HostPath: "/var/lib/kubelet/pods/uid-1/etc-hosts", ContainerPath: "/etc/hosts"}}
	got, err := containerConfig(containerParams{
		pod: pod, c: c, restartCount: 3, imageRef: "sha256:abc", env: []envVar{{"MSG", "hi"}},
		user: imageUserOf(&runtimeapi.Image{}), mounts: mounts,
	}, testNode())
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: "app", Attempt: 3},
		Image:      &runtimeapi.ImageSpec{Image: "sha256:abc", UserSpecifiedImage: "busybox:1.0"},
		Command:    []string{"sh", "-c", "echo hi $(MSG)"},
		Args:       []string{"$(MISSING)", "hi"},
		WorkingDir: "/work",
		Envs:       []*runtimeapi.KeyValue{{Key: "MSG", Value: []byte("hi")}},
		Mounts:     mounts,
		Labels: map[string]string{
			"io.kubernetes.pod.name":       "web",
			"io.kubernetes.pod.namespace":  "prod",
			"io.kubernetes.pod.uid":        "uid-1",
			"io.kubernetes.container.name": "app",
		},
		Annotations: map[string]string{
			"io.kubernetes.container.hash":                     strconv.FormatUint(container.HashContainer(c), 16),
			"io.kubernetes.container.restartCount":             "3",
			"io.kubernetes.container.terminationMessagePath":   "/dev/termination-log",
			"io.kubernetes.container.terminationMessagePolicy": "File",
			"io.kubernetes.pod.terminationGracePeriod":         "30",
			"io.kubernetes.container.ports":                    `[{"name":"http","containerPort":80,"protocol":"TCP"}]`,
		},
		LogPath: "app/3.log",
		Stdin:   true, StdinOnce: true, Tty: true,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, OomScoreAdj: 1000},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				RunAsUser:        &runtimeapi.Int64Value{Value: 0},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
				MaskedPaths:      defaultMaskedPaths,
				ReadonlyPaths:    defaultReadonlyPaths,
			},
		},
	}
	checkProto(t, "containerConfig", want, got)

	// The annotations read back.
	info := parseAnnotations(got.Annotations)
	if info.hash != container.HashContainer(c) || info.restartCount != 3 || *info.podTerminationGrace != 30 ||
		info.terminationMessagePath != "/dev/termination-log" || info.terminationMessagePolicy != v1.TerminationMessageReadFile || info.podDeletionGrace != nil {
		t.Errorf("parseAnnotations = %+v", info)
	}
}

func TestContainerStopSignal(t *testing.T) {
	tests := []struct {
		signal  v1.Signal
		want    runtimeapi.Signal
		wantErr string
	}{
		{signal: "", want: runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT},
		{signal: "SIGTERM", want: runtimeapi.Signal_SIGNAL_SIGTERM},
		{signal: "SIGUSR1", want: runtimeapi.Signal_SIGNAL_SIGUSR1},
		{signal: "SIGRTMIN+3", want: runtimeapi.Signal_SIGNAL_SIGRTMINPLUS3},
		{signal: "SIGRTMAX-1", want: runtimeapi.Signal_SIGNAL_SIGRTMAXMINUS1},
		{signal: "SIGNOPE", wantErr: `unsupported stop signal "SIGNOPE"`},
		{signal: "RUNTIME_DEFAULT", wantErr: `unsupported stop signal "RUNTIME_DEFAULT"`},
	}
	for _, tt := range tests {
		c := &v1.Container{Name: "app"}
		if tt.signal != "" {
			c.Lifecycle = &v1.Lifecycle{StopSignal: ptrTo(tt.signal)}
		}
		got, err := containerStopSignal(c)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%s: err = %v, want %q", tt.signal, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %v, %v; want %v", tt.signal, got, err, tt.want)
		}
	}

	// It reaches the config.
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "uid-1"},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "app", Lifecycle: &v1.Lifecycle{StopSignal: ptrTo(v1.SIGUSR1)}}}}}
	cfg, err := containerConfig(containerParams{pod: pod, c: &pod.Spec.Containers[0], user: imageUserOf(nil)}, testNode())
	if err != nil || cfg.StopSignal != runtimeapi.Signal_SIGNAL_SIGUSR1 {
		t.Errorf("config stop signal = %v, %v", cfg.GetStopSignal(), err)
	}
}

func TestContainerSecurityContext(t *testing.T) {
	uid := func(v int64) *int64 { return &v }
	tests := []struct {
		name           string
		psc            *v1.PodSecurityContext
		csc            *v1.SecurityContext
		annotations    map[string]string
		seccompDefault bool
		user           imageUser
		want           *runtimeapi.LinuxContainerSecurityContext
		wantErr        string
	}{
		{
			name: "pod values, container overrides, image user ignored",
			psc: &v1.PodSecurityContext{
				RunAsUser: uid(1000), RunAsGroup: uid(1000), FSGroup: uid(2000), SupplementalGroups: []int64{3000},
				SeccompProfile:           &v1.SeccompProfile{Type: v1.SeccompProfileTypeRuntimeDefault},
				SupplementalGroupsPolicy: ptrTo(v1.SupplementalGroupsPolicyStrict),
			},
			csc: &v1.SecurityContext{
				RunAsUser:                uid(1001),
				ReadOnlyRootFilesystem:   ptrTo(true),
				AllowPrivilegeEscalation: ptrTo(false),
				Capabilities:             &v1.Capabilities{Add: []v1.Capability{"NET_ADMIN"}, Drop: []v1.Capability{"ALL"}},
				SeccompProfile:           &v1.SeccompProfile{Type: v1.SeccompProfileTypeLocalhost, LocalhostProfile: ptrTo("my.json")},
				AppArmorProfile:          &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeRuntimeDefault},
			},
			user: imageUser{username: "nobody"},
			want: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions:         &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				RunAsUser:                &runtimeapi.Int64Value{Value: 1001},
				RunAsGroup:               &runtimeapi.Int64Value{Value: 1000},
				SupplementalGroups:       []int64{2000, 3000},
				SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict,
				ReadonlyRootfs:           true,
				NoNewPrivs:               true,
				Capabilities:             &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"ALL"}},
				Seccomp:                  &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/var/lib/kubelet/seccomp/my.json"},
				Apparmor:                 &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				ApparmorProfile:          "runtime/default",
				MaskedPaths:              defaultMaskedPaths,
				ReadonlyPaths:            defaultReadonlyPaths,
			},
		},
		{
			name: "image user name",
			user: imageUser{username: "nobody"},
			want: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				RunAsUsername:    "nobody",
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
				MaskedPaths:      defaultMaskedPaths,
				ReadonlyPaths:    defaultReadonlyPaths,
			},
		},
		{
			name: "privileged: nothing masked",
			csc:  &v1.SecurityContext{Privileged: ptrTo(true), AllowPrivilegeEscalation: ptrTo(true)},
			user: imageUser{uid: uid(5)},
			want: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				Privileged:       true,
				RunAsUser:        &runtimeapi.Int64Value{Value: 5},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
			},
		},
		{
			name: "unmasked proc",
			csc:  &v1.SecurityContext{ProcMount: ptrTo(v1.UnmaskedProcMount)},
			user: imageUser{uid: uid(5)},
			want: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				RunAsUser:        &runtimeapi.Int64Value{Value: 5},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
			},
		},
		{name: "runAsNonRoot with root image", psc: &v1.PodSecurityContext{RunAsNonRoot: ptrTo(true)}, user: imageUser{uid: uid(0)},
			wantErr: `container has runAsNonRoot and image will run as root (pod: "web_prod(uid-1)", container: app)`},
		{name: "runAsNonRoot with user name", csc: &v1.SecurityContext{RunAsNonRoot: ptrTo(true)}, user: imageUser{username: "app"},
			wantErr: `container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: "web_prod(uid-1)", container: app)`},
		{name: "runAsNonRoot with runAsUser 0", csc: &v1.SecurityContext{RunAsNonRoot: ptrTo(true), RunAsUser: uid(0)},
			wantErr: `container's runAsUser breaks non-root policy (pod: "web_prod(uid-1)", container: app)`},
		{name: "runAsNonRoot satisfied by the image", csc: &v1.SecurityContext{RunAsNonRoot: ptrTo(true)}, user: imageUser{uid: uid(65534)},
			want: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				RunAsUser:        &runtimeapi.Int64Value{Value: 65534},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
				MaskedPaths:      defaultMaskedPaths,
				ReadonlyPaths:    defaultReadonlyPaths,
			}},
		{
			name:           "seccompDefault: RuntimeDefault where no profile is set",
			seccompDefault: true,
			user:           imageUser{uid: uid(5)},
			want: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				RunAsUser:        &runtimeapi.Int64Value{Value: 5},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				MaskedPaths:      defaultMaskedPaths,
				ReadonlyPaths:    defaultReadonlyPaths,
			},
		},
		{
			name:           "seccompDefault: an explicit Unconfined stays",
			seccompDefault: true,
			psc:            &v1.PodSecurityContext{SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeUnconfined}},
			user:           imageUser{uid: uid(5)},
			want: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				RunAsUser:        &runtimeapi.Int64Value{Value: 5},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
				MaskedPaths:      defaultMaskedPaths,
				ReadonlyPaths:    defaultReadonlyPaths,
			},
		},
		{
			name:        "AppArmor from the deprecated annotation before the pod's field",
			psc:         &v1.PodSecurityContext{AppArmorProfile: &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeRuntimeDefault}},
			annotations: map[string]string{"container.apparmor.security.beta.kubernetes.io/app": "localhost/k8s-app"},
			user:        imageUser{uid: uid(5)},
			want: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				RunAsUser:        &runtimeapi.Int64Value{Value: 5},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
				Apparmor:         &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "k8s-app"},
				ApparmorProfile:  "localhost/k8s-app",
				MaskedPaths:      defaultMaskedPaths,
				ReadonlyPaths:    defaultReadonlyPaths,
			},
		},
		{name: "localhost seccomp without a profile", csc: &v1.SecurityContext{SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeLocalhost}},
			wantErr: "localhostProfile must be set if seccompProfile type is Localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "uid-1", Annotations: tt.annotations},
				Spec:       v1.PodSpec{SecurityContext: tt.psc, Containers: []v1.Container{{Name: "app", SecurityContext: tt.csc}}},
			}
			node := testNode()
			node.seccompDefault = tt.seccompDefault
			got, err := containerSecurityContext(pod, &pod.Spec.Containers[0], tt.user, nil, node)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkProto(t, "security context", tt.want, got)
		})
	}
}

func TestHostsFileContent(t *testing.T) {
	got := string(hostsFileContent([]string{"10.1.0.5", "fd00::5"}, "web", "sub.ns.svc.cluster.local",
		[]v1.HostAlias{{IP: "1.2.3.4", Hostnames: []string{"a", "b"}}}))
	want := "# Kubernetes-managed hosts file.\n" +
		"127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"fe00::0\tip6-mcastprefix\n" +
		"fe00::1\tip6-allnodes\n" +
		"fe00::2\tip6-allrouters\n" +
		"10.1.0.5\tweb.sub.ns.svc.cluster.local\tweb\n" +
		"fd00::5\tweb.sub.ns.svc.cluster.local\tweb\n" +
		"\n# Entries added by HostAliases.\n" +
		"1.2.3.4\ta\tb\n"
	if got != want {
		t.Errorf("hosts file:\n%s\nwant:\n%s", got, want)
	}
	if got := string(hostsFileContent([]string{"10.1.0.5"}, "web", "", nil)); !strings.HasSuffix(got, "fe00::2\tip6-allrouters\n10.1.0.5\tweb\n") {
		t.Errorf("hosts file without domain:\n%s", got)
	}
}
