package userns

import (
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// kubeletUser is the user whose subordinate IDs, if any, are the node's
// range (upstream's).
const kubeletUser = "kubelet"

// NodeRange is the range of host IDs for pods' user namespaces, as
// upstream finds it: the subordinate IDs of the "kubelet" user from
// getsubids when that user exists and the tool is installed (UIDs and GIDs
// must agree), else DefaultRange.
func NodeRange(idsPerPod uint32) (Range, error) {
	if _, err := user.Lookup(kubeletUser); err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return DefaultRange(idsPerPod), nil
		}
		return Range{}, err
	}
	cmd, err := exec.LookPath("getsubids")
	if err != nil {
		return DefaultRange(idsPerPod), nil
	}
	uids, err := exec.Command(cmd, kubeletUser).Output()
	if err != nil {
		return Range{}, fmt.Errorf("error retrieving additional uids for user %q: %w", kubeletUser, err)
	}
	gids, err := exec.Command(cmd, "-g", kubeletUser).Output()
	if err != nil {
		return Range{}, fmt.Errorf("error retrieving additional gids for user %q", kubeletUser)
	}
	if string(uids) != string(gids) {
		return Range{}, fmt.Errorf("mismatched subuids and subgids for user %q", kubeletUser)
	}
	return parseGetSubIDs(string(uids))
}

// parseGetSubIDs reads getsubids' one line, "0: kubelet 65536 2147483648".
func parseGetSubIDs(out string) (Range, error) {
	lines := strings.Split(strings.Trim(out, "\n"), "\n")
	if len(lines) != 1 {
		return Range{}, fmt.Errorf("error parsing line %q: it must contain only one line", out)
	}
	parts := strings.Fields(lines[0])
	if len(parts) != 4 {
		return Range{}, fmt.Errorf("invalid line %q", out)
	}
	first, err := strconv.ParseUint(parts[2], 10, 32)
	if err != nil {
		return Range{}, fmt.Errorf("error parsing line %q: %w", out, err)
	}
	length, err := strconv.ParseUint(parts[3], 10, 32)
	if err != nil {
		return Range{}, fmt.Errorf("error parsing line %q: %w", out, err)
	}
	return Range{First: uint32(first), Length: uint32(length)}, nil
}
