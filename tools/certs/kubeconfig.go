package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
)

// kubeconfig returns a kubeconfig for server that authenticates with the
// client cert pki/stem.crt. Certs are embedded, so the file can be copied.
// Strings are written double-quoted (YAML reads them like JSON strings).
func kubeconfig(server, pki, stem, user string) ([]byte, error) {
	b64 := func(name string) (string, error) {
		data, err := os.ReadFile(filepath.Join(pki, name))
		return base64.StdEncoding.EncodeToString(data), err
	}
	ca, err := b64("ca.crt")
	if err != nil {
		return nil, err
	}
	crt, err := b64(stem + ".crt")
	if err != nil {
		return nil, err
	}
	key, err := b64(stem + ".key")
	if err != nil {
		return nil, err
	}
	context := user + "@berth"
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: berth
  cluster:
    server: %q
    certificate-authority-data: %s
users:
- name: %q
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: %q
  context:
    cluster: berth
    user: %q
current-context: %q
`, server, ca, user, crt, key, context, user, context), nil
}
