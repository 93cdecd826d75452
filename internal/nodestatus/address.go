package nodestatus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/klog/v2"
)

// DetectNodeIP picks the node's address when --node-ip is not given, as
// upstream does when the node name is not an IP: the global address of the
// interface of the default route (IPv4 first). Without a default route it
// takes the first global address of an interface that is up, and on a
// host with none it takes the loopback address the host name resolves to
// (a laptop or CI box with no network, where the control plane is local
// too). Upstream also tries a DNS lookup of the node name first; berth
// does not, so that a slow resolver cannot hold up start-up.
func DetectNodeIP() (string, error) {
	ip, routeErr := utilnet.ChooseHostInterfaceWithLogger(klog.Background())
	if routeErr == nil {
		return ip.String(), nil
	}
	h := hostAddrs{}
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("list network interfaces: %w", err)
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&(net.FlagLoopback|net.FlagPointToPoint) != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				h.up = append(h.up, n.IP)
			}
		}
	}
	if name, err := os.Hostname(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if ips, err := net.DefaultResolver.LookupIP(ctx, "ip", name); err == nil {
			h.resolved = ips
		}
	}
	if ip := pickFallbackIP(h); ip != nil {
		return ip.String(), nil
	}
	return "", errors.Join(fmt.Errorf("no default route with a global address: %w", routeErr),
		errors.New("no other interface with a global address, and the host name does not resolve to a loopback address"))
}

// hostAddrs are the addresses DetectNodeIP falls back on.
type hostAddrs struct {
	up       []net.IP // addresses of interfaces that are up, not loopback
	resolved []net.IP // what the host name resolves to
}

// pickFallbackIP chooses a global unicast address of an interface that is
// up, IPv4 before IPv6, else a loopback address the host name resolves to.
func pickFallbackIP(h hostAddrs) net.IP {
	for _, v4 := range []bool{true, false} {
		for _, ip := range h.up {
			if (ip.To4() != nil) == v4 && ip.IsGlobalUnicast() {
				return ip
			}
		}
	}
	for _, v4 := range []bool{true, false} {
		for _, ip := range h.resolved {
			if (ip.To4() != nil) == v4 && ip.IsLoopback() {
				return ip
			}
		}
	}
	return nil
}
