package runtime

import (
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// checkProto fails the test when got differs from want, showing both.
func checkProto(t *testing.T, what string, want, got proto.Message) {
	t.Helper()
	if !proto.Equal(want, got) {
		opts := prototext.MarshalOptions{Multiline: true}
		t.Errorf("%s:\n--- got\n%s\n--- want\n%s", what, opts.Format(got), opts.Format(want))
	}
}
