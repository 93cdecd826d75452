package stats

import (
	"bytes"
	"fmt"
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
	for line := 0; len(b) > 0; line++ {
		text := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			text, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if line < 2 { // two header lines
			continue
		}
		rawName, rest, ok := bytes.Cut(text, []byte{':'})
		if !ok {
			continue
		}
		rawName = bytes.TrimSpace(rawName)
		if ignoredIface(string(rawName)) {
			continue
		}
		var v [16]uint64
		for i := range v {
			var f []byte
			if f, rest = nextField(rest); len(f) == 0 {
				return nil, fmt.Errorf("net/dev line for %s has %d fields, want 16", rawName, i)
			}
			n, err := strconv.ParseUint(string(f), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse net/dev %s: %w", rawName, err)
			}
			v[i] = n
		}
		out = append(out, ifaceStats{
			Name:    string(rawName),
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		})
	}
	return out, nil
}

func (r *fileReader) readNetDev(path string) ([]ifaceStats, error) {
	b, err := r.readFile(path)
	if err != nil {
		return nil, err
	}
	return parseNetDev(b)
}
