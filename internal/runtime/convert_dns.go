package runtime

import (
	"fmt"
	"io"
	"net"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Limits the API server validates and resolvers cope with (upstream
// apis/core/validation).
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
	maxDNSSearchPathLen   = 253
	maxResolvConfSize     = 10 << 20
)

// eventNote is an event a pure conversion wants recorded; the caller
// records it against the pod (or the node, when onNode).
type eventNote struct {
	eventType, reason, message string
	onNode                     bool
}

// parseResolvConf reads nameservers, search domains and options from a
// resolv.conf. Nameservers accumulate; the last search and options lines
// win, as in the C resolver.
func parseResolvConf(r io.Reader) (*runtimeapi.DNSConfig, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxResolvConfSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxResolvConfSize {
		return nil, fmt.Errorf("resolv.conf is larger than %d bytes", maxResolvConfSize)
	}
	cfg := &runtimeapi.DNSConfig{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) < 2 {
				return nil, fmt.Errorf("nameserver list is empty")
			}
			cfg.Servers = append(cfg.Servers, fields[1])
		case "search":
			cfg.Searches = nil
			for _, s := range fields[1:] {
				// "example.com." and "example.com" are the same domain.
				if s != "." {
					cfg.Searches = append(cfg.Searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			cfg.Options = mergeOptions(cfg.Options, fields[1:])
		}
	}
	return cfg, nil
}

// podDNSConfig is the resolver configuration for a pod's sandbox according
// to its dnsPolicy (upstream dns.Configurer.GetPodDNS). host is the parsed
// host resolv.conf (empty when berth has none configured).
func podDNSConfig(pod *v1.Pod, node *nodeConfig, host *runtimeapi.DNSConfig) (*runtimeapi.DNSConfig, []eventNote) {
	var notes []eventNote
	cfg := &runtimeapi.DNSConfig{
		Servers:  append([]string(nil), host.GetServers()...),
		Searches: append([]string(nil), host.GetSearches()...),
		Options:  append([]string(nil), host.GetOptions()...),
	}
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = v1.DNSClusterFirst
	}
	if policy == v1.DNSClusterFirst && pod.Spec.HostNetwork {
		// Host-network pods cannot reach the cluster DNS unless they ask
		// for it with ClusterFirstWithHostNet.
		policy = v1.DNSDefault
	}
	switch policy {
	case v1.DNSNone:
		cfg = &runtimeapi.DNSConfig{}
	case v1.DNSClusterFirst, v1.DNSClusterFirstWithHostNet:
		if len(node.clusterDNS) > 0 {
			cfg.Servers = append([]string(nil), node.clusterDNS...)
			cfg.Searches = clusterSearches(pod.Namespace, node.clusterDomain, cfg.Searches)
			cfg.Options = []string{"ndots:5"}
			break
		}
		msg := fmt.Sprintf("kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.", v1.DNSClusterFirst, v1.DNSDefault)
		notes = append(notes,
			eventNote{eventType: v1.EventTypeWarning, reason: "MissingClusterDNS", message: msg, onNode: true},
			eventNote{eventType: v1.EventTypeWarning, reason: "MissingClusterDNS", message: fmt.Sprintf("pod: %q. %s", podDesc(pod), msg)})
		hostDNSFallback(cfg, node)
	default: // Default
		hostDNSFallback(cfg, node)
	}
	if pod.Spec.DNSConfig != nil {
		cfg.Servers = omitDuplicates(append(cfg.Servers, pod.Spec.DNSConfig.Nameservers...))
		cfg.Searches = omitDuplicates(append(cfg.Searches, pod.Spec.DNSConfig.Searches...))
		var opts []string
		for _, o := range pod.Spec.DNSConfig.Options {
			if o.Value != nil && *o.Value != "" {
				opts = append(opts, o.Name+":"+*o.Value)
			} else {
				opts = append(opts, o.Name)
			}
		}
		cfg.Options = mergeOptions(cfg.Options, opts)
	}
	return fitDNSLimits(cfg, &notes), notes
}

// hostDNSFallback makes the Default policy work without a host resolv.conf:
// like the upstream kubelet, berth then points pods at a resolver on the
// node itself rather than leaving them with none.
func hostDNSFallback(cfg *runtimeapi.DNSConfig, node *nodeConfig) {
	if node.resolvConf != "" {
		return
	}
	cfg.Servers = nil
	for _, ip := range node.nodeIPs {
		if parsed := net.ParseIP(ip); parsed != nil && parsed.To4() == nil {
			cfg.Servers = append(cfg.Servers, "::1")
		} else {
			cfg.Servers = append(cfg.Servers, "127.0.0.1")
		}
	}
	if len(cfg.Servers) == 0 {
		cfg.Servers = []string{"127.0.0.1"}
	}
	cfg.Servers = omitDuplicates(cfg.Servers)
	cfg.Searches = []string{"."}
}

func clusterSearches(namespace, domain string, host []string) []string {
	if domain == "" {
		return host
	}
	return omitDuplicates(append([]string{namespace + ".svc." + domain, "svc." + domain, domain}, host...))
}

// mergeOptions adds options to existing ones; an option given again (with
// or without a new value) replaces the earlier one in place.
func mergeOptions(existing, more []string) []string {
	out := append([]string(nil), existing...)
	for _, o := range more {
		name, _, _ := strings.Cut(o, ":")
		replaced := false
		for i, e := range out {
			if en, _, _ := strings.Cut(e, ":"); en == name {
				out[i] = o
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}

func omitDuplicates(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// fitDNSLimits trims nameservers and search paths to what resolvers and
// the API accept, noting a DNSConfigForming warning when it had to.
func fitDNSLimits(cfg *runtimeapi.DNSConfig, notes *[]eventNote) *runtimeapi.DNSConfig {
	if len(cfg.Servers) > maxDNSNameservers {
		cfg.Servers = cfg.Servers[:maxDNSNameservers]
		*notes = append(*notes, eventNote{eventType: v1.EventTypeWarning, reason: "DNSConfigForming",
			message: "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: " + strings.Join(cfg.Servers, " ")})
	}
	exceeded := false
	if len(cfg.Searches) > maxDNSSearchPaths {
		cfg.Searches = cfg.Searches[:maxDNSSearchPaths]
		exceeded = true
	}
	var kept []string
	for _, s := range cfg.Searches {
		// Some resolvers (glibc 2.28) abort on longer search paths.
		if len(s) > maxDNSSearchPathLen {
			exceeded = true
			continue
		}
		kept = append(kept, s)
	}
	cfg.Searches = kept
	for len(cfg.Searches) > 0 && len(strings.Join(cfg.Searches, " ")) > maxDNSSearchListChars {
		cfg.Searches = cfg.Searches[:len(cfg.Searches)-1]
		exceeded = true
	}
	if exceeded {
		*notes = append(*notes, eventNote{eventType: v1.EventTypeWarning, reason: "DNSConfigForming",
			message: "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(cfg.Searches, " ")})
	}
	return cfg
}

// podDesc is the upstream human-readable pod name: name_namespace(uid).
func podDesc(pod *v1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
