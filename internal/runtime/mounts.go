package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const etcHostsPath = "/etc/hosts"

// Headers of the hosts files berth writes (upstream's).
const (
	managedHostsHeader                = "# Kubernetes-managed hosts file.\n"
	managedHostsHeaderWithHostNetwork = "# Kubernetes-managed hosts file (host network).\n"
)

// podDir is where berth keeps a pod's files: RootDir/pods/<uid>.
func podDir(rootDir string, uid types.UID) string {
	return filepath.Join(rootDir, "pods", string(uid))
}

// hostsFileContent is the /etc/hosts of a pod on the pod network: the
// localhost entries, the pod's own name on each of its IPs, and the pod's
// hostAliases.
func hostsFileContent(podIPs []string, hostname, domain string, aliases []v1.HostAlias) []byte {
	var b strings.Builder
	b.WriteString(managedHostsHeader)
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	for _, ip := range podIPs {
		if domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, hostname, domain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	writeHostAliases(&b, aliases)
	return []byte(b.String())
}

// hostNetworkHostsFileContent is the /etc/hosts of a pod on the host
// network: the node's own, then the pod's hostAliases.
func hostNetworkHostsFileContent(nodeHosts []byte, aliases []v1.HostAlias) []byte {
	var b strings.Builder
	b.WriteString(managedHostsHeaderWithHostNetwork)
	b.Write(nodeHosts)
	writeHostAliases(&b, aliases)
	return []byte(b.String())
}

func writeHostAliases(b *strings.Builder, aliases []v1.HostAlias) {
	if len(aliases) == 0 {
		return
	}
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
}

// managedMounts writes the files berth mounts into a container and returns
// their mounts: the pod's /etc/hosts (pods on the host network, and pods on
// the pod network that have an IP, unless the container mounts a volume
// there) and a fresh file for the termination message, which each instance
// of the container gets anew.
func (m *Manager) managedMounts(pod *v1.Pod, c *v1.Container, podIPs []string) ([]*runtimeapi.Mount, error) {
	dir := podDir(m.node.rootDir, pod.UID)
	var mounts []*runtimeapi.Mount
	if (pod.Spec.HostNetwork || len(podIPs) > 0) && !mountsAt(c, etcHostsPath) {
		content, err := m.hostsFile(pod, podIPs)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create pod directory: %w", err)
		}
		path := filepath.Join(dir, "etc-hosts")
		if err := writeFileMode(path, content, 0o644); err != nil {
			return nil, fmt.Errorf("write hosts file: %w", err)
		}
		mounts = append(mounts, &runtimeapi.Mount{HostPath: path, ContainerPath: etcHostsPath, SelinuxRelabel: true})
	}
	if c.TerminationMessagePath != "" {
		cdir := filepath.Join(dir, "containers", c.Name)
		if err := os.MkdirAll(cdir, 0o750); err != nil {
			return nil, fmt.Errorf("create container directory: %w", err)
		}
		path := filepath.Join(cdir, randomID())
		// Any user in the container must be able to write its message.
		if err := writeFileMode(path, nil, 0o666); err != nil {
			return nil, fmt.Errorf("create termination message file: %w", err)
		}
		mounts = append(mounts, &runtimeapi.Mount{HostPath: path, ContainerPath: c.TerminationMessagePath, SelinuxRelabel: true})
	}
	return mounts, nil
}

// hostsFile is the content of the pod's /etc/hosts. A host-network pod's
// starts from the node's, read anew for every container as upstream does.
func (m *Manager) hostsFile(pod *v1.Pod, podIPs []string) ([]byte, error) {
	if pod.Spec.HostNetwork {
		node, err := os.ReadFile(m.node.etcHosts())
		if err != nil {
			return nil, fmt.Errorf("read the node's hosts file: %w", err)
		}
		return hostNetworkHostsFileContent(node, pod.Spec.HostAliases), nil
	}
	hostname, domain, err := podHostnameAndDomain(pod, m.node.clusterDomain)
	if err != nil {
		return nil, err
	}
	return hostsFileContent(podIPs, hostname, domain, pod.Spec.HostAliases), nil
}

// writeFileMode writes a file and sets its mode regardless of the umask.
func writeFileMode(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
