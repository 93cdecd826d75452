package container

import (
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// CheckPathSegment fails unless s is one plain path segment: not empty,
// not "." or "..", without a slash or NUL. Pod UIDs, names and namespaces
// become directory names under the root and log dirs; checked before
// anything is removed, a bad one can never reach outside.
func CheckPathSegment(what, s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("%s %q is not a single path segment", what, s)
	}
	return nil
}

// PodDir is the directory of pod uid under rootDir (rootDir/pods/<uid>),
// or an error when uid would not name one directory right under
// rootDir/pods.
func PodDir(rootDir string, uid types.UID) (string, error) {
	if err := CheckPathSegment("pod UID", string(uid)); err != nil {
		return "", err
	}
	return filepath.Join(rootDir, "pods", string(uid)), nil
}
