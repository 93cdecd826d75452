package nodestatus

import (
	"net"
	"testing"
)

func TestPickFallbackIP(t *testing.T) {
	ips := func(ss ...string) []net.IP {
		var out []net.IP
		for _, s := range ss {
			out = append(out, net.ParseIP(s))
		}
		return out
	}
	tests := []struct {
		name string
		h    hostAddrs
		want string // "" means none
	}{
		{name: "nothing", want: ""},
		{name: "first global IPv4", h: hostAddrs{up: ips("fe80::1", "2001:db8::1", "169.254.1.1", "10.0.0.5", "10.0.0.6")}, want: "10.0.0.5"},
		{name: "IPv6 when there is no IPv4", h: hostAddrs{up: ips("fe80::1", "2001:db8::1")}, want: "2001:db8::1"},
		{name: "interfaces beat the host name", h: hostAddrs{up: ips("10.0.0.5"), resolved: ips("127.0.0.1")}, want: "10.0.0.5"},
		{name: "loopback when the host name resolves to it", h: hostAddrs{up: ips("fe80::1"), resolved: ips("::1", "127.0.1.1")}, want: "127.0.1.1"},
		{name: "not a non-loopback resolution", h: hostAddrs{resolved: ips("192.0.2.7")}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pickFallbackIP(tt.h)
			if (got == nil && tt.want != "") || (got != nil && got.String() != tt.want) {
				t.Errorf("pickFallbackIP = %v, want %q", got, tt.want)
			}
		})
	}
}

// DetectNodeIP must find something on any host that runs the tests (they
// need at least a loopback resolution or a network).
func TestDetectNodeIP(t *testing.T) {
	ip, err := DetectNodeIP()
	if err != nil {
		t.Skipf("no usable address on this host: %v", err)
	}
	if net.ParseIP(ip) == nil {
		t.Errorf("DetectNodeIP = %q, not an IP", ip)
	}
}
