package container

import (
	"encoding/json"
	"hash/fnv"

	v1 "k8s.io/api/core/v1"
)

// HashContainer returns a stable hash of a container spec without its
// resources. berth stores it on every container it creates; a running
// container whose hash differs from the spec's is replaced. Resources are
// left out, as upstream leaves them out, because they change in place
// (in-place resize) without a new container. It must not change between
// berth versions for the same spec, or a berth upgrade would restart every
// container: it hashes the canonical JSON encoding, whose field order is
// fixed by the API types.
func HashContainer(c *v1.Container) uint64 {
	if len(c.Resources.Limits) == 0 && len(c.Resources.Requests) == 0 && len(c.Resources.Claims) == 0 {
		return hashJSON(c)
	}
	cc := *c
	cc.Resources = v1.ResourceRequirements{}
	return hashJSON(&cc)
}

// HashMatches reports whether a container created with hash runs spec c
// (its name, image, command... everything but resources). Berth before
// in-place resize hashed the resources too (legacyHash); such a container
// still matches while c's resources (the allocated ones) are those it was
// created with, so upgrading berth restarts nothing. Its first resize
// restarts it once (the old hash no longer matches), after which it
// carries the new hash.
func HashMatches(c *v1.Container, hash uint64) bool {
	return hash == HashContainer(c) || hash == legacyHash(c)
}

// legacyHash is the hash berth stored before resources were left out:
// the whole spec, resources included. For a container without resources
// it equals HashContainer.
func legacyHash(c *v1.Container) uint64 { return hashJSON(c) }

func hashJSON(c *v1.Container) uint64 {
	b, err := json.Marshal(c)
	if err != nil {
		// A v1.Container always encodes; keep the function total anyway.
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}
