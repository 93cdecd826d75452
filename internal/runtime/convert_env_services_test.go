package runtime

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func service(ns, name, ip string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

func TestServiceEnv(t *testing.T) {
	kube := service("default", "kubernetes", "10.96.0.1", v1.ServicePort{Name: "https", Port: 443})
	kubeVars := map[string]string{
		"KUBERNETES_SERVICE_HOST":       "10.96.0.1",
		"KUBERNETES_SERVICE_PORT":       "443",
		"KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT":               "tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP":       "tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_443_TCP_PORT":  "443",
		"KUBERNETES_PORT_443_TCP_ADDR":  "10.96.0.1",
	}
	foo := service("app", "foo-svc", "10.96.5.5",
		v1.ServicePort{Port: 8765},
		v1.ServicePort{Name: "dns-udp", Port: 53, Protocol: v1.ProtocolUDP})
	fooVars := map[string]string{
		"FOO_SVC_SERVICE_HOST":         "10.96.5.5",
		"FOO_SVC_SERVICE_PORT":         "8765",
		"FOO_SVC_SERVICE_PORT_DNS_UDP": "53",
		"FOO_SVC_PORT":                 "tcp://10.96.5.5:8765",
		"FOO_SVC_PORT_8765_TCP":        "tcp://10.96.5.5:8765",
		"FOO_SVC_PORT_8765_TCP_PROTO":  "tcp",
		"FOO_SVC_PORT_8765_TCP_PORT":   "8765",
		"FOO_SVC_PORT_8765_TCP_ADDR":   "10.96.5.5",
		"FOO_SVC_PORT_53_UDP":          "udp://10.96.5.5:53",
		"FOO_SVC_PORT_53_UDP_PROTO":    "udp",
		"FOO_SVC_PORT_53_UDP_PORT":     "53",
		"FOO_SVC_PORT_53_UDP_ADDR":     "10.96.5.5",
	}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	v6 := service("app", "v6", "fd00::5", v1.ServicePort{Port: 80})
	ownKube := service("app", "kubernetes", "10.96.7.7", v1.ServicePort{Port: 8080})
	tests := []struct {
		name     string
		services []*v1.Service
		ns       string
		links    bool
		want     map[string]string
	}{
		{"no services", nil, "app", true, map[string]string{}},
		{"api server and own namespace", []*v1.Service{kube, foo}, "app", true, merge(kubeVars, fooVars)},
		{"links disabled: api server only", []*v1.Service{kube, foo}, "app", false, kubeVars},
		{"other namespaces ignored", []*v1.Service{kube, foo}, "elsewhere", true, kubeVars},
		{"headless and IP-less ignored", []*v1.Service{kube, service("app", "headless", "None", v1.ServicePort{Port: 80}), service("app", "external", "")}, "app", true, kubeVars},
		{"pod in default", []*v1.Service{kube}, "default", false, kubeVars},
		{"IPv6", []*v1.Service{v6}, "app", true, map[string]string{
			"V6_SERVICE_HOST": "fd00::5", "V6_SERVICE_PORT": "80", "V6_PORT": "tcp://[fd00::5]:80",
			"V6_PORT_80_TCP": "tcp://[fd00::5]:80", "V6_PORT_80_TCP_PROTO": "tcp", "V6_PORT_80_TCP_PORT": "80", "V6_PORT_80_TCP_ADDR": "fd00::5",
		}},
		// The namespace's own "kubernetes" wins over the API server's,
		// whichever is listed first; without links the API server's stays.
		{"own kubernetes wins", []*v1.Service{kube, ownKube}, "app", true, serviceVarsOf(ownKube)},
		{"own kubernetes wins, listed first", []*v1.Service{ownKube, kube}, "app", true, serviceVarsOf(ownKube)},
		{"own kubernetes without links", []*v1.Service{ownKube, kube}, "app", false, kubeVars},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serviceEnv(tt.services, tt.ns, tt.links); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("serviceEnv:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func serviceVarsOf(s *v1.Service) map[string]string {
	m := map[string]string{}
	addServiceVars(m, s)
	return m
}

func TestContainerEnvServices(t *testing.T) {
	pod := envPod()
	c := &pod.Spec.Containers[0]
	c.Env = []v1.EnvVar{
		{Name: "URL", Value: "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)/$(MINE)"},
		{Name: "MINE", Value: "x"},
		{Name: "KUBERNETES_SERVICE_PORT", Value: "6443"}, // the pod's own wins
		{Name: "SHADOW", Value: "$(KUBERNETES_SERVICE_PORT)"},
	}
	objs := envObjects{services: map[string]string{
		"KUBERNETES_SERVICE_HOST": "10.96.0.1",
		"KUBERNETES_SERVICE_PORT": "443",
		"B_SERVICE_HOST":          "10.96.0.2",
		"A_SERVICE_HOST":          "10.96.0.3",
	}}
	got, _, err := containerEnv(pod, c, nil, testNode(), objs)
	if err != nil {
		t.Fatal(err)
	}
	want := []envVar{
		{"URL", "https://10.96.0.1:443/$(MINE)"},
		{"MINE", "x"},
		{"KUBERNETES_SERVICE_PORT", "6443"},
		{"SHADOW", "6443"},
		// Then the service variables the container does not set, sorted.
		{"A_SERVICE_HOST", "10.96.0.3"},
		{"B_SERVICE_HOST", "10.96.0.2"},
		{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("containerEnv:\n got %v\nwant %v", got, want)
	}

	objs.servicesErr = errServicesNotRead
	if _, _, err := containerEnv(pod, c, nil, testNode(), objs); !errors.Is(err, errServicesNotRead) {
		t.Errorf("services not read: err = %v", err)
	}
}

// fakeServices is a ServiceLister over a fixed list.
type fakeServices struct {
	synced   bool
	services []*v1.Service
	err      error
}

func (f *fakeServices) HasSynced() bool { return f.synced }

func (f *fakeServices) List(ns string) ([]*v1.Service, error) {
	var out []*v1.Service
	for _, s := range f.services {
		if s.Namespace == ns {
			out = append(out, s)
		}
	}
	return out, f.err
}

func TestFetchServiceEnv(t *testing.T) {
	kube := service("default", "kubernetes", "10.96.0.1", v1.ServicePort{Port: 443})
	foo := service("prod", "foo", "10.96.0.9", v1.ServicePort{Port: 80})
	api := envPod() // namespace prod
	static := envPod()
	static.Annotations = map[string]string{"kubernetes.io/config.source": "file"}
	off := false
	noLinks := envPod()
	noLinks.Spec.EnableServiceLinks = &off

	tests := []struct {
		name     string
		lister   ServiceLister
		pod      *v1.Pod
		wantHost map[string]string // the *_SERVICE_HOST variables
		wantErr  string
	}{
		{"standalone", nil, api, nil, ""},
		{"not yet read: API pod waits", &fakeServices{services: []*v1.Service{kube}}, api, nil, errServicesNotRead.Error()},
		{"not yet read: static pod goes ahead", &fakeServices{services: []*v1.Service{kube}}, static,
			map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, ""},
		{"read", &fakeServices{synced: true, services: []*v1.Service{kube, foo}}, api,
			map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "FOO_SERVICE_HOST": "10.96.0.9"}, ""},
		{"links off", &fakeServices{synced: true, services: []*v1.Service{kube, foo}}, noLinks,
			map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, ""},
		{"list fails", &fakeServices{synced: true, err: errors.New("boom")}, api, nil,
			"failed to list services when setting up env vars: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Manager{opts: Options{Services: tt.lister}}
			// A cancelled context: no waiting for a list that never comes.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			env, err := m.fetchServiceEnv(ctx, tt.pod)
			if (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			hosts := map[string]string{}
			for k, v := range env {
				if len(k) > len("_SERVICE_HOST") && k[len(k)-len("_SERVICE_HOST"):] == "_SERVICE_HOST" {
					hosts[k] = v
				}
			}
			if tt.wantHost == nil {
				tt.wantHost = map[string]string{}
			}
			if !reflect.DeepEqual(hosts, tt.wantHost) {
				t.Errorf("service hosts %v, want %v", hosts, tt.wantHost)
			}
		})
	}
}

// listedLater reports synced from its third question on.
type listedLater struct {
	fakeServices
	asked atomic.Int32
}

func (l *listedLater) HasSynced() bool { return l.asked.Add(1) > 2 }

func TestFetchServiceEnvWaitsForFirstList(t *testing.T) {
	l := &listedLater{fakeServices: fakeServices{services: []*v1.Service{service("default", "kubernetes", "10.96.0.1", v1.ServicePort{Port: 443})}}}
	m := &Manager{opts: Options{Services: l}}
	env, err := m.fetchServiceEnv(context.Background(), envPod())
	if err != nil || env["KUBERNETES_SERVICE_HOST"] != "10.96.0.1" {
		t.Errorf("fetchServiceEnv = %v, %v; want the kubernetes Service's variables once listed", env, err)
	}
}
