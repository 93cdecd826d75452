package container

import (
	"encoding/json"
	"hash/fnv"

	v1 "k8s.io/api/core/v1"
)

// HashContainer returns a stable hash of a container spec. berth stores it on
// every container it creates; a running container whose hash differs from the
// spec's is replaced. It must not change between berth versions for the same
// spec, or a berth upgrade would restart every container: it hashes the
// canonical JSON encoding, whose field order is fixed by the API types.
func HashContainer(c *v1.Container) uint64 {
	b, err := json.Marshal(c)
	if err != nil {
		// A v1.Container always encodes; keep the function total anyway.
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}
