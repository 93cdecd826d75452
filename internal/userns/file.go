package userns

import (
	"encoding/json"
	"fmt"
)

// The pod directory's "userns" file, in upstream's format.
const fileName = "userns"

type idMapping struct {
	HostID      uint32 `json:"hostId"`
	ContainerID uint32 `json:"containerId"`
	Length      uint32 `json:"length"`
}

type fileContent struct {
	UIDMappings []idMapping `json:"uidMappings"`
	GIDMappings []idMapping `json:"gidMappings"`
}

func encode(hostID, length uint32) ([]byte, error) {
	m := []idMapping{{HostID: hostID, ContainerID: 0, Length: length}}
	return json.Marshal(fileContent{UIDMappings: m, GIDMappings: m})
}

// decode reads a file berth (or upstream) wrote, with upstream's checks:
// one mapping, the same for UIDs and GIDs, root mapped.
func decode(b []byte) (hostID, length uint32, err error) {
	var c fileContent
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, 0, fmt.Errorf("invalid user namespace mappings file: %w", err)
	}
	switch {
	case len(c.UIDMappings) != 1:
		return 0, 0, fmt.Errorf("invalid user namespace configuration: no more than one mapping allowed.")
	case len(c.UIDMappings) != len(c.GIDMappings):
		return 0, 0, fmt.Errorf("invalid user namespace configuration: GID and UID mappings should be identical.")
	case c.UIDMappings[0] != c.GIDMappings[0]:
		return 0, 0, fmt.Errorf("invalid user namespace configuration: GID and UID mapping should be identical")
	case c.UIDMappings[0].ContainerID != 0:
		return 0, 0, fmt.Errorf("invalid user namespace configuration: UID 0 must be mapped")
	}
	return c.UIDMappings[0].HostID, c.UIDMappings[0].Length, nil
}
