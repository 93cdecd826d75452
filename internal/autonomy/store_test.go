package autonomy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKeyCreatedOnceAndPrivate(t *testing.T) {
	root := t.TempDir()
	s1, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(root, DirName, keyFile)
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != keySize {
		t.Fatalf("key: mode %v size %d; want 0600, %d bytes", fi.Mode().Perm(), fi.Size(), keySize)
	}
	if di, _ := os.Stat(filepath.Join(root, DirName)); di.Mode().Perm() != 0o700 {
		t.Fatalf("checkpoint dir mode %v; want 0700", di.Mode().Perm())
	}
	key1, _ := os.ReadFile(keyPath)
	sec := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}, Data: map[string][]byte{"password": []byte("hunter2")}}
	if err := s1.writeSecret(sec); err != nil {
		t.Fatal(err)
	}
	// A second start finds the same key and can read what the first wrote.
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if key2, _ := os.ReadFile(keyPath); !bytes.Equal(key1, key2) {
		t.Fatal("the key changed on the second start")
	}
	got, err := s2.Secret("ns", "s")
	if err != nil || string(got.Data["password"]) != "hunter2" {
		t.Fatalf("Secret after reopening = %v, %v", got, err)
	}
	// A key others can read is refused.
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err == nil {
		t.Fatal("Open accepted a key readable by others")
	}
}

func TestSecretsAndTokensSealed(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	sec := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}, Data: map[string][]byte{"k": []byte("plain-secret-value")}}
	if err := s.writeSecret(sec); err != nil {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{Token: "plain-token-value"}}
	if err := s.writeToken("uid1", "kube-api-access", 0, tr); err != nil {
		t.Fatal(err)
	}
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}, Data: map[string]string{"k": "v"}}
	if err := s.writeConfigMap(cm); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, DirName)
	err = filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		for _, plain := range []string{"plain-secret-value", "plain-token-value", "cGxhaW4tc2VjcmV0LXZhbHVl"} {
			if bytes.Contains(b, []byte(plain)) {
				t.Errorf("%s holds %q in the clear", path, plain)
			}
		}
		if filepath.Base(path)[0] == '.' {
			t.Errorf("temporary file left: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Token("uid1", "kube-api-access", 0)
	if err != nil || got.Status.Token != "plain-token-value" {
		t.Fatalf("Token = %v, %v", got, err)
	}
	// A sealed file under another name does not open: the name is part
	// of what is authenticated.
	if err := os.Rename(filepath.Join(dir, secDir, "ns", "s"), filepath.Join(dir, secDir, "ns", "t")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secret("ns", "t"); err == nil {
		t.Fatal("a secret moved to another name opened")
	}
	if c, err := s.ConfigMap("ns", "c"); err != nil || c.Data["k"] != "v" {
		t.Fatalf("ConfigMap = %v, %v", c, err)
	}
}

func TestBadNamesRefused(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ns, name string }{{"..", "x"}, {"ns", "../x"}, {"", "x"}, {"ns", "a/b"}} {
		cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: c.name}}
		if err := s.writeConfigMap(cm); err == nil {
			t.Errorf("writeConfigMap(%q, %q) succeeded", c.ns, c.name)
		}
	}
	if err := s.writePod("../x", []byte("{}")); err == nil {
		t.Error("writePod with UID ../x succeeded")
	}
}

func TestRemoveAll(t *testing.T) {
	root := t.TempDir()
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, DirName)); !os.IsNotExist(err) {
		t.Fatalf("checkpoint dir still there: %v", err)
	}
}
