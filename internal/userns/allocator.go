// Package userns hands out the host ID ranges of pods' user namespaces, as
// upstream's kubelet does (pkg/kubelet/userns): the node's range is cut
// into blocks of idsPerPod IDs; a pod with `hostUsers: false` gets one
// block, mapped to IDs 0..idsPerPod-1 in the pod, for UIDs and GIDs alike.
// The block is recorded in the pod's directory (file "userns", upstream's
// format) so that a restarted berth, or an upstream kubelet on the same
// root dir, gives the pod the same one.
package userns

import (
	"fmt"

	"k8s.io/apimachinery/pkg/types"
)

// unit is what idsPerPod and the node's range must be multiples of.
const unit = 65536

// DefaultIDsPerPod is upstream's default userNamespaces.idsPerPod.
const DefaultIDsPerPod = unit

// Range is the host IDs berth may map into pods.
type Range struct {
	First, Length uint32
}

// DefaultRange is upstream's range when no subordinate IDs are configured
// for the "kubelet" user: every ID from idsPerPod on (IDs below it, root
// among them, are never mapped).
func DefaultRange(idsPerPod uint32) Range {
	return Range{First: idsPerPod, Length: uint32((1 << 32) - uint64(idsPerPod))}
}

// Allocator tracks which blocks of the range are in use, by pod. It is not
// safe for concurrent use; Manager locks it.
type Allocator struct {
	off, n    int    // the range in blocks: blocks off .. off+n-1
	idsPerPod uint32 // block length
	used      map[int]types.UID
	byPod     map[types.UID]int
}

// NewAllocator checks the range as upstream does: whole blocks, none
// below the first block (which holds root), room for maxPods pods.
func NewAllocator(r Range, idsPerPod uint32, maxPods int) (*Allocator, error) {
	switch {
	case idsPerPod == 0 || idsPerPod%unit != 0:
		return nil, fmt.Errorf("kubelet user namespace length %v is not a multiple of %d", idsPerPod, unit)
	case r.First%idsPerPod != 0:
		return nil, fmt.Errorf("kubelet user assigned ID %v is not a multiple of %v", r.First, idsPerPod)
	case r.First < idsPerPod:
		return nil, fmt.Errorf("kubelet user assigned ID %v must be greater or equal to %v", r.First, idsPerPod)
	case r.Length%idsPerPod != 0:
		return nil, fmt.Errorf("kubelet user assigned IDs length %v is not a multiple of %v", r.Length, idsPerPod)
	case r.Length/idsPerPod < uint32(maxPods):
		return nil, fmt.Errorf("kubelet user assigned IDs are not enough to support %v pods", maxPods)
	}
	return &Allocator{
		off: int(r.First / idsPerPod), n: int(r.Length / idsPerPod), idsPerPod: idsPerPod,
		used: map[int]types.UID{}, byPod: map[types.UID]int{},
	}, nil
}

// Allocate gives pod the lowest free block, or the one it has, and returns
// the block's first host ID.
func (a *Allocator) Allocate(pod types.UID) (uint32, error) {
	if b, ok := a.byPod[pod]; ok {
		return a.firstID(b), nil
	}
	for i := range a.n {
		if _, taken := a.used[i]; !taken {
			a.used[i], a.byPod[pod] = pod, i
			return a.firstID(i), nil
		}
	}
	return 0, fmt.Errorf("could not find an empty slot to allocate a user namespace")
}

// Record marks the block starting at hostID as pod's (read back from the
// pod's directory), with upstream's checks.
func (a *Allocator) Record(pod types.UID, hostID, length uint32) error {
	if length != a.idsPerPod {
		return fmt.Errorf("wrong user namespace length %v", length)
	}
	if hostID%a.idsPerPod != 0 {
		return fmt.Errorf("wrong user namespace offset specified %v", hostID)
	}
	i := int(hostID/a.idsPerPod) - a.off
	if prev, ok := a.byPod[pod]; ok {
		if prev != i {
			return fmt.Errorf("different user namespace range already used by pod %q", pod)
		}
		return nil
	}
	if i < 0 || i >= a.n {
		return fmt.Errorf("id %v is out of range", hostID)
	}
	if _, taken := a.used[i]; taken {
		return fmt.Errorf("range picked for pod %q already taken", pod)
	}
	a.used[i], a.byPod[pod] = pod, i
	return nil
}

// Release frees pod's block, if it has one.
func (a *Allocator) Release(pod types.UID) {
	if i, ok := a.byPod[pod]; ok {
		delete(a.byPod, pod)
		delete(a.used, i)
	}
}

// Length is the number of IDs of each pod's block.
func (a *Allocator) Length() uint32 { return a.idsPerPod }

func (a *Allocator) firstID(block int) uint32 { return uint32(block+a.off) * a.idsPerPod }
