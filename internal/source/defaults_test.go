package source

import (
	"encoding/json"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
)

func ptr[T any](v T) *T { return &v }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSetPodDefaultsMinimalPod(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{
		InitContainers: []v1.Container{{Name: "init", Image: "busybox:1.36"}},
		Containers: []v1.Container{{
			Name:  "app",
			Image: "nginx",
			Ports: []v1.ContainerPort{{ContainerPort: 80}},
			Env: []v1.EnvVar{{Name: "NODE", ValueFrom: &v1.EnvVarSource{
				FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
			Resources: v1.ResourceRequirements{
				Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("64Mi")},
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m")},
			},
			LivenessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{}}},
			Lifecycle:     &v1.Lifecycle{PreStop: &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{}}},
		}},
		Volumes: []v1.Volume{
			{Name: "scratch"},
			{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/var/log"}}},
			{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{
				Items: []v1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
		},
	}}
	SetPodDefaults(pod)

	want := &v1.Pod{Spec: v1.PodSpec{
		InitContainers: []v1.Container{{
			Name: "init", Image: "busybox:1.36",
			ImagePullPolicy:          v1.PullIfNotPresent,
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: v1.TerminationMessageReadFile,
		}},
		Containers: []v1.Container{{
			Name:  "app",
			Image: "nginx",
			Ports: []v1.ContainerPort{{ContainerPort: 80, Protocol: v1.ProtocolTCP}},
			Env: []v1.EnvVar{{Name: "NODE", ValueFrom: &v1.EnvVarSource{
				FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}},
			Resources: v1.ResourceRequirements{
				Limits: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("64Mi")},
				// The given request stays; the missing one is the limit.
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("64Mi")},
			},
			LivenessProbe: &v1.Probe{
				ProbeHandler:   v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/", Scheme: v1.URISchemeHTTP}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
			},
			Lifecycle:                &v1.Lifecycle{PreStop: &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/", Scheme: v1.URISchemeHTTP}}},
			ImagePullPolicy:          v1.PullAlways,
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: v1.TerminationMessageReadFile,
		}},
		Volumes: []v1.Volume{
			{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
			{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/var/log", Type: ptr(v1.HostPathUnset)}}},
			{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{
				DefaultMode: ptr[int32](0o644),
				Items:       []v1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}}}},
		},
		RestartPolicy:                 v1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: ptr[int64](30),
		DNSPolicy:                     v1.DNSClusterFirst,
		SecurityContext:               &v1.PodSecurityContext{},
		SchedulerName:                 "default-scheduler",
		EnableServiceLinks:            ptr(true),
	}}
	if !equality.Semantic.DeepEqual(pod, want) {
		t.Errorf("defaulted pod:\n%s\nwant:\n%s", mustJSON(t, pod), mustJSON(t, want))
	}

	// Defaulting is idempotent.
	again := pod.DeepCopy()
	SetPodDefaults(again)
	if !equality.Semantic.DeepEqual(pod, again) {
		t.Errorf("second SetPodDefaults changed the pod:\n%s", mustJSON(t, again))
	}
}

func TestSetPodDefaultsKeepsGivenValues(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{
		RestartPolicy:                 v1.RestartPolicyNever,
		DNSPolicy:                     v1.DNSDefault,
		TerminationGracePeriodSeconds: ptr[int64](5),
		SchedulerName:                 "other",
		EnableServiceLinks:            ptr(false),
		SecurityContext:               &v1.PodSecurityContext{RunAsUser: ptr[int64](1000)},
		Containers: []v1.Container{{
			Name: "app", Image: "nginx:latest",
			ImagePullPolicy:          v1.PullNever,
			TerminationMessagePath:   "/tmp/msg",
			TerminationMessagePolicy: v1.TerminationMessageFallbackToLogsOnError,
			Ports:                    []v1.ContainerPort{{ContainerPort: 53, Protocol: v1.ProtocolUDP}},
			ReadinessProbe: &v1.Probe{
				ProbeHandler:   v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/ready", Scheme: v1.URISchemeHTTPS}},
				TimeoutSeconds: 2, PeriodSeconds: 3, SuccessThreshold: 4, FailureThreshold: 5,
			},
		}},
	}}
	want := pod.DeepCopy()
	SetPodDefaults(pod)
	if !equality.Semantic.DeepEqual(pod, want) {
		t.Errorf("given values changed:\n%s\nwant:\n%s", mustJSON(t, pod), mustJSON(t, want))
	}
}

func TestSetPodDefaultsSpecialCases(t *testing.T) {
	tests := []struct {
		name  string
		pod   v1.PodSpec
		check func(t *testing.T, s *v1.PodSpec)
	}{{
		name: "negative grace period becomes 1",
		pod:  v1.PodSpec{TerminationGracePeriodSeconds: ptr[int64](-5)},
		check: func(t *testing.T, s *v1.PodSpec) {
			if *s.TerminationGracePeriodSeconds != 1 {
				t.Errorf("grace = %d, want 1", *s.TerminationGracePeriodSeconds)
			}
		},
	}, {
		name: "host network makes container ports host ports",
		pod: v1.PodSpec{HostNetwork: true, Containers: []v1.Container{{Name: "a", Image: "x:1",
			Ports: []v1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 9090, HostPort: 9091}}}}},
		check: func(t *testing.T, s *v1.PodSpec) {
			p := s.Containers[0].Ports
			if p[0].HostPort != 8080 || p[1].HostPort != 9091 {
				t.Errorf("host ports = %d, %d; want 8080, 9091", p[0].HostPort, p[1].HostPort)
			}
		},
	}, {
		name: "deprecated serviceAccount copied both ways",
		pod:  v1.PodSpec{DeprecatedServiceAccount: "sa"},
		check: func(t *testing.T, s *v1.PodSpec) {
			if s.ServiceAccountName != "sa" || s.DeprecatedServiceAccount != "sa" {
				t.Errorf("service account = %q/%q", s.ServiceAccountName, s.DeprecatedServiceAccount)
			}
		},
	}, {
		name: "secret, configMap and projected volume modes",
		pod: v1.PodSpec{Volumes: []v1.Volume{
			{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "s"}}},
			{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}},
			{Name: "p", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
				{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "t"}}}}}},
		}},
		check: func(t *testing.T, s *v1.PodSpec) {
			v := s.Volumes
			if *v[0].Secret.DefaultMode != 0o644 || *v[1].ConfigMap.DefaultMode != 0o644 || *v[2].Projected.DefaultMode != 0o644 {
				t.Errorf("modes = %o %o %o", *v[0].Secret.DefaultMode, *v[1].ConfigMap.DefaultMode, *v[2].Projected.DefaultMode)
			}
			if *v[2].Projected.Sources[0].ServiceAccountToken.ExpirationSeconds != 3600 {
				t.Errorf("token expiration = %d", *v[2].Projected.Sources[0].ServiceAccountToken.ExpirationSeconds)
			}
		},
	}, {
		name: "quantities rounded up to milli-units",
		pod: v1.PodSpec{Containers: []v1.Container{{Name: "a", Image: "x:1", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("0.0001")}}}}},
		check: func(t *testing.T, s *v1.PodSpec) {
			q := s.Containers[0].Resources.Requests[v1.ResourceCPU]
			if q.Cmp(resource.MustParse("1m")) != 0 {
				t.Errorf("cpu = %s, want 1m", q.String())
			}
		},
	}, {
		name: "grpc probe service defaults to empty",
		pod: v1.PodSpec{Containers: []v1.Container{{Name: "a", Image: "x:1",
			StartupProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{GRPC: &v1.GRPCAction{Port: 1}}}}}},
		check: func(t *testing.T, s *v1.PodSpec) {
			if svc := s.Containers[0].StartupProbe.GRPC.Service; svc == nil || *svc != "" {
				t.Errorf("grpc service = %v", svc)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: tt.pod}
			SetPodDefaults(pod)
			tt.check(t, &pod.Spec)
		})
	}
}
