package devicemanager

import (
	"google.golang.org/protobuf/proto"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// The checkpoint keeps Allocate responses in protobuf, as upstream.
func marshalResponse(r *pluginapi.ContainerAllocateResponse) ([]byte, error) {
	return proto.Marshal(r)
}

func unmarshalResponse(b []byte, r *pluginapi.ContainerAllocateResponse) error {
	return proto.Unmarshal(b, r)
}
