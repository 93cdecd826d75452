package dra

import (
	"errors"
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/resourceclaim"
)

// podClaim is one ResourceClaim a pod uses, by the name of the API object.
type podClaim struct {
	name string
	// mustCheckOwner: the claim was made from a template for this pod, so
	// it must be owned by it (a claim of the same name left over from an
	// earlier pod must not be used).
	mustCheckOwner bool
}

// podClaims lists the ResourceClaims of a pod: those it names, those made
// for it from templates (status.resourceClaimStatuses; an error while the
// controller has not made them yet), and the claim the scheduler made for
// its extended resources backed by DRA (status.extendedResourceClaimStatus).
// A template for which no claim was needed is left out.
func podClaims(pod *v1.Pod) ([]podClaim, error) {
	var out []podClaim
	for i := range pod.Spec.ResourceClaims {
		name, mustCheckOwner, err := resourceclaim.Name(pod, &pod.Spec.ResourceClaims[i])
		if err != nil {
			return nil, err
		}
		if name == nil {
			continue
		}
		out = append(out, podClaim{name: *name, mustCheckOwner: mustCheckOwner})
	}
	if st := pod.Status.ExtendedResourceClaimStatus; st != nil {
		out = append(out, podClaim{name: st.ResourceClaimName})
	}
	return out, nil
}

// checkClaim tells whether pod may use claim now, with upstream's messages:
// the claim must be the pod's own when made from a template, reserved for
// the pod and allocated. The scheduler reserves and allocates before it
// binds the pod, so an error here is usually a moment of lag: the pod
// waits and is retried.
func checkClaim(pod *v1.Pod, pc podClaim, claim *resourceapi.ResourceClaim) error {
	if pc.mustCheckOwner {
		if err := resourceclaim.IsForPod(pod, claim, false); err != nil {
			return err
		}
	}
	if !resourceclaim.IsReservedForPod(pod, claim, false) {
		return fmt.Errorf("pod %s (%s) is not allowed to use ResourceClaim %s (%s)", pod.Name, pod.UID, claim.Name, claim.UID)
	}
	if claim.Status.Allocation == nil {
		return fmt.Errorf("ResourceClaim %s: not allocated", claim.Name)
	}
	return nil
}

// newClaimState is the state of an allocated claim before it is prepared:
// the drivers its devices were allocated from.
func newClaimState(claim *resourceapi.ResourceClaim) (*claimState, error) {
	drivers := map[string]driverState{}
	for _, r := range claim.Status.Allocation.Devices.Results {
		if len(r.SkipNodeOperations) > 0 {
			// Alpha in v1.37 and off by default (DRAOptionalNodeOperations):
			// as upstream with the gate off.
			return nil, fmt.Errorf("ResourceClaim %s: %w", claim.Name, errors.New("DRAOptionalNodeOperations feature gate is disabled on kubelet"))
		}
		drivers[r.Driver] = driverState{}
	}
	return &claimState{
		ClaimUID:    claim.UID,
		ClaimName:   claim.Name,
		Namespace:   claim.Namespace,
		PodUIDs:     sets.New[string](),
		DriverState: drivers,
	}, nil
}

// containerClaimRequests maps each claim a container uses (by the API
// object's name) to the requests it uses of it ("" for all of them): its
// resources.claims, and for the extended resources it requests that are
// backed by DRA, the scheduler's request mappings.
func containerClaimRequests(pod *v1.Pod, c *v1.Container) (map[string][]string, error) {
	out := map[string][]string{}
	for _, ref := range c.Resources.Claims {
		i := slices.IndexFunc(pod.Spec.ResourceClaims, func(pc v1.PodResourceClaim) bool { return pc.Name == ref.Name })
		if i < 0 {
			continue // validation keeps this from happening
		}
		name, _, err := resourceclaim.Name(pod, &pod.Spec.ResourceClaims[i])
		if err != nil {
			return nil, err
		}
		if name != nil {
			out[*name] = append(out[*name], ref.Request)
		}
	}
	if st := pod.Status.ExtendedResourceClaimStatus; st != nil {
		for _, m := range st.RequestMappings {
			q, ok := c.Resources.Requests[v1.ResourceName(m.ResourceName)]
			if m.ContainerName == c.Name && ok && !q.IsZero() {
				out[st.ResourceClaimName] = append(out[st.ResourceClaimName], m.RequestName)
			}
		}
	}
	return out, nil
}

// cdiDevices are the CDI device IDs of a prepared claim for one request
// ("" for every request), in the drivers' order.
func (s *claimState) cdiDevices(request string) []string {
	var ids []string
	drivers := make([]string, 0, len(s.DriverState))
	for d := range s.DriverState {
		drivers = append(drivers, d)
	}
	slices.Sort(drivers)
	for _, d := range drivers {
		for _, dev := range s.DriverState[d].Devices {
			if request == "" || len(dev.RequestNames) == 0 || slices.Contains(dev.RequestNames, request) {
				ids = append(ids, dev.CDIDeviceIDs...)
			}
		}
	}
	return ids
}
