package runtime

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/internal/cm"
)

func envPod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "prod", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"example.com/owner": "me"},
		},
		Spec: v1.PodSpec{
			NodeName:           "node-a",
			ServiceAccountName: "sa",
			Containers: []v1.Container{{
				Name: "app",
				Resources: v1.ResourceRequirements{
					Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("1500m")},
				},
			}, {
				Name: "other",
				Resources: v1.ResourceRequirements{
					Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Gi")},
				},
			}},
		},
	}
}

func testNode() *nodeConfig {
	return &nodeConfig{
		nodeName:         "node-a",
		nodeIPs:          []string{"192.168.1.10", "fd00::10"},
		rootDir:          "/var/lib/kubelet",
		podLogsDir:       "/var/log/pods",
		clusterDNS:       []string{"10.96.0.10"},
		clusterDomain:    "cluster.local",
		resolvConf:       "/etc/resolv.conf",
		cgroups:          cm.NewLayout("/", true, "cgroupfs"),
		cpuCapacityMilli: 4000,
		memoryCapacity:   8 << 30,
		minOOMScoreAdj:   -1000,
	}
}

func fieldRef(path string) *v1.EnvVarSource {
	return &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: path}}
}

func resourceRef(container, res, divisor string) *v1.EnvVarSource {
	s := &v1.ResourceFieldSelector{ContainerName: container, Resource: res}
	if divisor != "" {
		s.Divisor = resource.MustParse(divisor)
	}
	return &v1.EnvVarSource{ResourceFieldRef: s}
}

func TestContainerEnv(t *testing.T) {
	pod := envPod()
	c := &pod.Spec.Containers[0]
	c.Env = []v1.EnvVar{
		{Name: "A", Value: "alpha"},
		{Name: "B", Value: "$(A)-$(C)-$$(A)"}, // C is declared later: stays literal
		{Name: "C", Value: "gamma"},
		{Name: "EMPTY"},
		{Name: "A", Value: "again $(A)"}, // redeclared: first position, last value
		{Name: "NAME", ValueFrom: fieldRef("metadata.name")},
		{Name: "NS", ValueFrom: fieldRef("metadata.namespace")},
		{Name: "UID", ValueFrom: fieldRef("metadata.uid")},
		{Name: "APP", ValueFrom: fieldRef("metadata.labels['app']")},
		{Name: "NOLABEL", ValueFrom: fieldRef("metadata.labels['nope']")},
		{Name: "OWNER", ValueFrom: fieldRef("metadata.annotations['example.com/owner']")},
		{Name: "LABELS", ValueFrom: fieldRef("metadata.labels")},
		{Name: "NODE", ValueFrom: fieldRef("spec.nodeName")},
		{Name: "SA", ValueFrom: fieldRef("spec.serviceAccountName")},
		{Name: "HOSTIP", ValueFrom: fieldRef("status.hostIP")},
		{Name: "HOSTIPS", ValueFrom: fieldRef("status.hostIPs")},
		{Name: "PODIP", ValueFrom: fieldRef("status.podIP")},
		{Name: "PODIPS", ValueFrom: fieldRef("status.podIPs")},
		{Name: "CPU_REQ_M", ValueFrom: resourceRef("", "requests.cpu", "1m")},
		{Name: "CPU_LIM", ValueFrom: resourceRef("", "limits.cpu", "")},
		{Name: "MEM_REQ_MI", ValueFrom: resourceRef("", "requests.memory", "1Mi")},
		{Name: "MEM_LIM", ValueFrom: resourceRef("", "limits.memory", "1Gi")},
		{Name: "OTHER_MEM", ValueFrom: resourceRef("other", "limits.memory", "1Mi")},
		{Name: "OTHER_CPU", ValueFrom: resourceRef("other", "limits.cpu", "")},
		{Name: "OTHER_CPU_REQ", ValueFrom: resourceRef("other", "requests.cpu", "")},
		{Name: "REF", Value: "$(NAME).$(NS)"},
	}
	got, notes, err := containerEnv(pod, c, []string{"10.1.0.5", "fd00::5"}, testNode(), envObjects{})
	if err != nil || len(notes) > 0 {
		t.Fatal(err, notes)
	}
	want := []envVar{
		{"A", "again alpha"},
		{"B", "alpha-$(C)-$(A)"},
		{"C", "gamma"},
		{"EMPTY", ""},
		{"NAME", "web"},
		{"NS", "prod"},
		{"UID", "uid-1"},
		{"APP", "web"},
		{"NOLABEL", ""},
		{"OWNER", "me"},
		{"LABELS", "app=\"web\"\ntier=\"front\""},
		{"NODE", "node-a"},
		{"SA", "sa"},
		{"HOSTIP", "192.168.1.10"},
		{"HOSTIPS", "192.168.1.10,fd00::10"},
		{"PODIP", "10.1.0.5"},
		{"PODIPS", "10.1.0.5,fd00::5"},
		{"CPU_REQ_M", "250"},
		{"CPU_LIM", "2"}, // 1.5 rounded up
		{"MEM_REQ_MI", "64"},
		{"MEM_LIM", "8"}, // no limit: node capacity, 8Gi
		{"OTHER_MEM", "1024"},
		{"OTHER_CPU", "4"}, // no limit: 4 node CPUs
		{"OTHER_CPU_REQ", "0"},
		{"REF", "web.prod"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("containerEnv:\n got %v\nwant %v", got, want)
	}
}

func TestContainerEnvErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     []v1.EnvVar
		from    []v1.EnvFromSource
		wantErr string
	}{
		{
			name:    "configMapKeyRef without an API server",
			env:     []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}, Key: "k"}}}},
			wantErr: `couldn't get configMap prod/cm, no kubeClient defined`,
		},
		{
			name:    "secretKeyRef without an API server",
			env:     []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "s"}, Key: "k"}}}},
			wantErr: `couldn't get secret prod/s, no kubeClient defined`,
		},
		{
			name:    "envFrom configMap without an API server",
			from:    []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}}}},
			wantErr: `couldn't get configMap prod/cm, no kubeClient defined`,
		},
		{
			name:    "envFrom secret without an API server",
			from:    []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "s"}}}},
			wantErr: `couldn't get secret prod/s, no kubeClient defined`,
		},
		{
			name:    "fileKeyRef",
			env:     []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{FileKeyRef: &v1.FileKeySelector{VolumeName: "v", Path: "p", Key: "k"}}}},
			wantErr: `env var "X": fileKeyRef v/p is not supported yet`,
		},
		{
			name:    "unsupported apiVersion",
			env:     []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{APIVersion: "v2", FieldPath: "metadata.name"}}}},
			wantErr: `env var "X": unsupported pod version: v2`,
		},
		{
			name:    "unknown field",
			env:     []v1.EnvVar{{Name: "X", ValueFrom: fieldRef("spec.hostname")}},
			wantErr: `env var "X": unsupported fieldPath: spec.hostname`,
		},
		{
			name:    "subscript on a plain field",
			env:     []v1.EnvVar{{Name: "X", ValueFrom: fieldRef("metadata.name['x']")}},
			wantErr: `env var "X": fieldPath "metadata.name['x']" does not support subscript`,
		},
		{
			name:    "bad label key",
			env:     []v1.EnvVar{{Name: "X", ValueFrom: fieldRef("metadata.labels['bad key']")}},
			wantErr: `env var "X": invalid key subscript in metadata.labels['bad key']`,
		},
		{
			name:    "unknown resource",
			env:     []v1.EnvVar{{Name: "X", ValueFrom: resourceRef("", "limits.gpu", "")}},
			wantErr: `env var "X": unsupported container resource : limits.gpu`,
		},
		{
			name:    "unknown container",
			env:     []v1.EnvVar{{Name: "X", ValueFrom: resourceRef("nope", "limits.cpu", "")}},
			wantErr: `env var "X": container nope not found`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := envPod()
			c := &pod.Spec.Containers[0]
			c.Env, c.EnvFrom = tt.env, tt.from
			_, _, err := containerEnv(pod, c, nil, testNode(), envObjects{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want prefix %q", err, tt.wantErr)
			}
		})
	}
}

// testObjects is a snapshot with ConfigMap "cm" and Secret "s" (namespace
// prod), a missing ConfigMap "gone" and Secret "nosecret", and a ConfigMap
// "broken" whose read failed.
func testObjects() envObjects {
	notFound := func(res, name string) error { return apierrors.NewNotFound(v1.Resource(res), name) }
	return envObjects{
		configMaps: map[string]fetched[*v1.ConfigMap]{
			"cm":     {obj: &v1.ConfigMap{Data: map[string]string{"b": "2", "a": "1", "host": "db"}}},
			"other":  {obj: &v1.ConfigMap{Data: map[string]string{"a": "other-a", "z": "26"}}},
			"gone":   {err: notFound("configmap", "gone")},
			"broken": {err: errors.New("the server is currently unable to handle the request")},
		},
		secrets: map[string]fetched[*v1.Secret]{
			"s":        {obj: &v1.Secret{Data: map[string][]byte{"pw": []byte("hunter2"), "user": []byte("admin")}}},
			"nosecret": {err: notFound("secret", "nosecret")},
		},
	}
}

func cmKey(name, key string, optional bool) *v1.EnvVarSource {
	return &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: optionalPtr(optional)}}
}

func secretKey(name, key string, optional bool) *v1.EnvVarSource {
	return &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: optionalPtr(optional)}}
}

func optionalPtr(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}

func TestContainerEnvFromObjects(t *testing.T) {
	tests := []struct {
		name      string
		from      []v1.EnvFromSource
		env       []v1.EnvVar
		want      []envVar
		wantNotes []string
		wantErr   string
	}{
		{
			name: "key refs",
			env: []v1.EnvVar{
				{Name: "HOST", ValueFrom: cmKey("cm", "host", false)},
				{Name: "PW", ValueFrom: secretKey("s", "pw", false)},
				{Name: "URL", Value: "$(HOST):5432"},
			},
			want: []envVar{{"HOST", "db"}, {"PW", "hunter2"}, {"URL", "db:5432"}},
		},
		{
			name: "envFrom: keys sorted, prefix, later sources and env override in place",
			from: []v1.EnvFromSource{
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}}},
				{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "s"}}, Prefix: "S_"},
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "other"}}},
			},
			env: []v1.EnvVar{
				{Name: "b", Value: "from env $(a)"},
				{Name: "NEW", Value: "$(S_user)"},
			},
			want: []envVar{{"a", "other-a"}, {"b", "from env other-a"}, {"host", "db"}, {"S_pw", "hunter2"}, {"S_user", "admin"}, {"z", "26"}, {"NEW", "admin"}},
		},
		{
			name: "optional and absent: left out",
			from: []v1.EnvFromSource{
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}, Optional: ptrTo(true)}},
				{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "nosecret"}, Optional: ptrTo(true)}},
			},
			env: []v1.EnvVar{
				{Name: "A", ValueFrom: cmKey("gone", "a", true)},
				{Name: "B", ValueFrom: cmKey("cm", "nokey", true)},
				{Name: "C", ValueFrom: secretKey("nosecret", "pw", true)},
				{Name: "D", ValueFrom: secretKey("s", "nokey", true)},
				{Name: "E", Value: "[$(A)]"},
			},
			want: []envVar{{"E", "[$(A)]"}},
		},
		{
			name:    "missing configmap",
			env:     []v1.EnvVar{{Name: "A", ValueFrom: cmKey("gone", "a", false)}},
			wantErr: `configmap "gone" not found`,
		},
		{
			name:    "missing key in configmap",
			env:     []v1.EnvVar{{Name: "A", ValueFrom: cmKey("cm", "k", false)}},
			wantErr: `couldn't find key k in ConfigMap prod/cm`,
		},
		{
			name:    "missing secret",
			env:     []v1.EnvVar{{Name: "A", ValueFrom: secretKey("nosecret", "pw", false)}},
			wantErr: `secret "nosecret" not found`,
		},
		{
			name:    "missing key in secret",
			env:     []v1.EnvVar{{Name: "A", ValueFrom: secretKey("s", "k", false)}},
			wantErr: `couldn't find key k in Secret prod/s`,
		},
		{
			name:    "missing envFrom configmap",
			from:    []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}}}},
			wantErr: `configmap "gone" not found`,
		},
		{
			name:    "missing envFrom secret",
			from:    []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "nosecret"}}}},
			wantErr: `secret "nosecret" not found`,
		},
		{
			name:    "optional does not hide other errors",
			env:     []v1.EnvVar{{Name: "A", ValueFrom: cmKey("broken", "a", true)}},
			wantErr: "the server is currently unable to handle the request",
		},
		{
			name: "invalid names are skipped with an event",
			from: []v1.EnvFromSource{
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}}, Prefix: "X="},
				{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "s"}}, Prefix: "1_"},
			},
			want: []envVar{{"1_pw", "hunter2"}, {"1_user", "admin"}},
			wantNotes: []string{
				"Warning InvalidEnvironmentVariableNames Keys [X=a, X=b, X=host] from the EnvFrom configMap prod/cm were skipped since they are considered invalid environment variable names.",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := envPod()
			c := &pod.Spec.Containers[0]
			c.Env, c.EnvFrom = tt.env, tt.from
			got, notes, err := containerEnv(pod, c, nil, testNode(), testObjects())
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("env:\n got %v\nwant %v", got, tt.want)
			}
			var gotNotes []string
			for _, n := range notes {
				gotNotes = append(gotNotes, n.eventType+" "+n.reason+" "+n.message)
			}
			if !reflect.DeepEqual(gotNotes, tt.wantNotes) {
				t.Errorf("notes = %q, want %q", gotNotes, tt.wantNotes)
			}
		})
	}
}

func TestContainerEnvResourcesFromNodeAllocatable(t *testing.T) {
	pod := envPod()
	c := &pod.Spec.Containers[0]
	c.Env = []v1.EnvVar{
		{Name: "MEM_LIM", ValueFrom: resourceRef("", "limits.memory", "1Mi")},
		{Name: "CPU_LIM", ValueFrom: resourceRef("", "limits.cpu", "1m")},
		{Name: "OTHER_CPU", ValueFrom: resourceRef("other", "limits.cpu", "1m")},
	}
	alloc := v1.ResourceList{v1.ResourceCPU: resource.MustParse("1900m"), v1.ResourceMemory: resource.MustParse("7Gi")}
	got, _, err := containerEnv(pod, c, nil, testNode(), envObjects{allocatable: alloc})
	if err != nil {
		t.Fatal(err)
	}
	// Unset limits read as the Node's allocatable, not the capacity.
	want := []envVar{{"MEM_LIM", "7168"}, {"CPU_LIM", "1500"}, {"OTHER_CPU", "1900"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("containerEnv = %v, want %v", got, want)
	}
}
