package stats

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ifaceStats is one interface's counters from /proc/<pid>/net/dev.
type ifaceStats struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// ignoredIface mirrors cAdvisor: loopback and the host ends of container
// links say nothing about a pod's or the node's own traffic.
func ignoredIface(name string) bool {
	for _, p := range []string{"lo", "veth", "docker", "nerdctl"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// parseNetDev parses /proc/net/dev, skipping ignored interfaces, in file
// order.
func parseNetDev(b []byte) ([]ifaceStats, error) {
	var out []ifaceStats
	s := bufio.NewScanner(bytes.NewReader(b))
	for line := 0; s.Scan(); line++ {
		if line < 2 { // two header lines
			continue
		}
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if ignoredIface(name) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("net/dev line for %s has %d fields, want 16", name, len(f))
		}
		var v [16]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse net/dev %s: %w", name, err)
			}
			v[i] = n
		}
		out = append(out, ifaceStats{
			Name:    name,
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		})
	}
	return out, s.Err()
}

func readNetDev(path string) ([]ifaceStats, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseNetDev(b)
}
