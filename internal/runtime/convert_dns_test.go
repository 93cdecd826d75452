package runtime

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestParseResolvConf(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *runtimeapi.DNSConfig
		wantErr bool
	}{
		{name: "empty", in: "", want: &runtimeapi.DNSConfig{}},
		{
			name: "typical",
			in:   "# comment\n; other comment\nnameserver 1.1.1.1\nnameserver  8.8.8.8 \nsearch example.com. corp.example.com .\noptions ndots:2 timeout:3\n",
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"1.1.1.1", "8.8.8.8"},
				Searches: []string{"example.com", "corp.example.com"},
				Options:  []string{"ndots:2", "timeout:3"},
			},
		},
		{
			name: "last search wins, options merge",
			in:   "search a.com\nsearch b.com\noptions ndots:1 rotate\noptions ndots:3\n",
			want: &runtimeapi.DNSConfig{Searches: []string{"b.com"}, Options: []string{"ndots:3", "rotate"}},
		},
		{name: "nameserver without address", in: "nameserver\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseResolvConf(strings.NewReader(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseResolvConf = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestPodDNSConfig(t *testing.T) {
	host := &runtimeapi.DNSConfig{
		Servers:  []string{"192.168.1.1"},
		Searches: []string{"corp.example.com"},
		Options:  []string{"timeout:2"},
	}
	ptr := func(s string) *string { return &s }
	tests := []struct {
		name        string
		policy      v1.DNSPolicy
		hostNetwork bool
		dnsConfig   *v1.PodDNSConfig
		clusterDNS  []string
		resolvConf  string
		host        *runtimeapi.DNSConfig
		want        *runtimeapi.DNSConfig
		wantEvents  []string
	}{
		{
			name: "ClusterFirst", policy: v1.DNSClusterFirst, clusterDNS: []string{"10.96.0.10"}, host: host,
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10"},
				Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example.com"},
				Options:  []string{"ndots:5"},
			},
		},
		{
			name: "unset policy means ClusterFirst", clusterDNS: []string{"10.96.0.10"}, host: &runtimeapi.DNSConfig{},
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10"},
				Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local"},
				Options:  []string{"ndots:5"},
			},
		},
		{
			name: "ClusterFirst without cluster DNS falls back to Default", policy: v1.DNSClusterFirst, host: host,
			want: host,
			wantEvents: []string{
				`node Warning MissingClusterDNS kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`,
				`pod Warning MissingClusterDNS pod: "web_ns(uid-1)". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`,
			},
		},
		{
			name: "ClusterFirst on the host network means Default", policy: v1.DNSClusterFirst, hostNetwork: true,
			clusterDNS: []string{"10.96.0.10"}, host: host, want: host,
		},
		{
			name: "ClusterFirstWithHostNet", policy: v1.DNSClusterFirstWithHostNet, hostNetwork: true,
			clusterDNS: []string{"10.96.0.10", "10.96.0.11"}, host: host,
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10", "10.96.0.11"},
				Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example.com"},
				Options:  []string{"ndots:5"},
			},
		},
		{name: "Default", policy: v1.DNSDefault, clusterDNS: []string{"10.96.0.10"}, host: host, want: host},
		{
			name: "Default without a resolv.conf uses the node", policy: v1.DNSDefault, resolvConf: "-",
			host: &runtimeapi.DNSConfig{},
			want: &runtimeapi.DNSConfig{Servers: []string{"127.0.0.1", "::1"}, Searches: []string{"."}},
		},
		{
			name: "None with dnsConfig", policy: v1.DNSNone, clusterDNS: []string{"10.96.0.10"}, host: host,
			dnsConfig: &v1.PodDNSConfig{
				Nameservers: []string{"9.9.9.9"},
				Searches:    []string{"my.dns.search.suffix"},
				Options:     []v1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}, {Name: "edns0"}},
			},
			want: &runtimeapi.DNSConfig{Servers: []string{"9.9.9.9"}, Searches: []string{"my.dns.search.suffix"}, Options: []string{"ndots:2", "edns0"}},
		},
		{name: "None alone", policy: v1.DNSNone, host: host, want: &runtimeapi.DNSConfig{}},
		{
			name: "dnsConfig merges into ClusterFirst", policy: v1.DNSClusterFirst, clusterDNS: []string{"10.96.0.10"}, host: host,
			dnsConfig: &v1.PodDNSConfig{
				Nameservers: []string{"10.96.0.10", "1.1.1.1"},
				Searches:    []string{"cluster.local", "extra.local"},
				Options:     []v1.PodDNSConfigOption{{Name: "ndots", Value: ptr("1")}, {Name: "single-request"}},
			},
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10", "1.1.1.1"},
				Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example.com", "extra.local"},
				Options:  []string{"ndots:1", "single-request"},
			},
		},
		{
			name: "too many nameservers", policy: v1.DNSNone,
			dnsConfig: &v1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"}},
			host:      host,
			want:      &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3"}},
			wantEvents: []string{
				"pod Warning DNSConfigForming Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 1.1.1.1 2.2.2.2 3.3.3.3",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-1"},
				Spec:       v1.PodSpec{DNSPolicy: tt.policy, HostNetwork: tt.hostNetwork, DNSConfig: tt.dnsConfig},
			}
			node := testNode()
			node.clusterDNS = tt.clusterDNS
			if tt.resolvConf == "-" {
				node.resolvConf = ""
			}
			got, notes := podDNSConfig(pod, node, tt.host)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("config:\n got %v\nwant %v", got, tt.want)
			}
			var events []string
			for _, n := range notes {
				where := "pod"
				if n.onNode {
					where = "node"
				}
				events = append(events, fmt.Sprintf("%s %s %s %s", where, n.eventType, n.reason, n.message))
			}
			if !reflect.DeepEqual(events, tt.wantEvents) {
				t.Errorf("events:\n got %q\nwant %q", events, tt.wantEvents)
			}
		})
	}
}

func TestFitDNSSearchLimits(t *testing.T) {
	var searches []string
	for i := range 40 {
		searches = append(searches, fmt.Sprintf("d%02d.%s", i, strings.Repeat("x", 60)))
	}
	searches = append(searches[:3], append([]string{strings.Repeat("y", 254)}, searches[3:]...)...)
	var notes []eventNote
	got := fitDNSLimits(&runtimeapi.DNSConfig{Searches: searches}, &notes)
	line := strings.Join(got.Searches, " ")
	if len(line) > maxDNSSearchListChars || len(got.Searches) > maxDNSSearchPaths {
		t.Errorf("search line of %d paths, %d chars", len(got.Searches), len(line))
	}
	for _, s := range got.Searches {
		if len(s) > maxDNSSearchPathLen {
			t.Errorf("kept over-long search path %q", s)
		}
	}
	if got.Searches[0] != searches[0] || got.Searches[3] != searches[4] {
		t.Errorf("searches not kept in order: %v", got.Searches[:4])
	}
	if len(notes) != 1 || notes[0].reason != "DNSConfigForming" || !strings.HasPrefix(notes[0].message, "Search Line limits were exceeded") {
		t.Errorf("notes = %+v", notes)
	}
}
