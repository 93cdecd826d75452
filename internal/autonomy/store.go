package autonomy

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/internal/container"
)

// DirName is the checkpoint directory under the root dir.
const DirName = "autonomy"

const (
	keyFile  = "key"
	keySize  = 32 // AES-256
	podsDir  = "pods"
	podFile  = "pod.json"
	cmDir    = "configmaps"
	secDir   = "secrets"
	svcDir   = "services"
	tokenPfx = "token-"
)

// Store reads and writes the checkpoint directory. Its methods may be
// called concurrently; each file is replaced atomically.
type Store struct {
	dir  string
	aead cipher.AEAD
}

// Open opens (creating it if needed) the checkpoint directory under
// rootDir and its key.
func Open(rootDir string) (*Store, error) {
	dir := filepath.Join(rootDir, DirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node autonomy: create %s: %w", dir, err)
	}
	// A directory made by an older berth or by hand may be more open.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node autonomy: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, fmt.Errorf("node autonomy: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("node autonomy: key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("node autonomy: key: %w", err)
	}
	return &Store{dir: dir, aead: aead}, nil
}

// RemoveAll removes the checkpoint directory under rootDir: without node
// autonomy nothing may stay on disk, Secrets least of all.
func RemoveAll(rootDir string) error {
	return os.RemoveAll(filepath.Join(rootDir, DirName))
}

// loadOrCreateKey reads the key at path, or creates it once: written to a
// temporary file and linked into place, so two starts never end up with
// two keys and a crash never leaves a short one.
func loadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create key: %w", err)
	}
	tmp, err := writeTemp(filepath.Dir(path), key)
	if err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(path)
		}
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	return key, syncDir(filepath.Dir(path))
}

func readKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key %s has mode %v; it must be readable by its owner only (0600)", path, fi.Mode().Perm())
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("key %s has %d bytes, want %d", path, len(key), keySize)
	}
	return key, nil
}

// writeTemp writes data to a new 0600 file in dir and fsyncs it.
func writeTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return "", err
	}
	name := f.Name()
	// CreateTemp makes 0600 files; say so in case that ever changes.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// write replaces the file at rel (a path under the checkpoint directory)
// atomically: temporary file, fsync, rename, fsync of the directory.
func (s *Store) write(rel string, data []byte) error {
	path := filepath.Join(s.dir, rel)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("checkpoint %s: %w", rel, err)
	}
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", rel, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("checkpoint %s: %w", rel, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("checkpoint %s: %w", rel, err)
	}
	return nil
}

func (s *Store) writeJSON(rel string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", rel, err)
	}
	return s.write(rel, b)
}

func (s *Store) readJSON(rel string, v any) error {
	b, err := os.ReadFile(filepath.Join(s.dir, rel))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("checkpoint %s: %w", rel, err)
	}
	return nil
}

// writeSealed encrypts v's JSON with the node's key.
func (s *Store) writeSealed(rel string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", rel, err)
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("checkpoint %s: %w", rel, err)
	}
	return s.write(rel, s.aead.Seal(nonce, nonce, b, []byte(filepath.ToSlash(rel))))
}

func (s *Store) readSealed(rel string, v any) error {
	b, err := os.ReadFile(filepath.Join(s.dir, rel))
	if err != nil {
		return err
	}
	n := s.aead.NonceSize()
	if len(b) < n {
		return fmt.Errorf("checkpoint %s: too short to be sealed", rel)
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(filepath.ToSlash(rel)))
	if err != nil {
		return fmt.Errorf("checkpoint %s: cannot open with the node's key: %w", rel, err)
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("checkpoint %s: %w", rel, err)
	}
	return nil
}

func (s *Store) remove(rel string) error {
	err := os.RemoveAll(filepath.Join(s.dir, rel))
	if err != nil {
		return fmt.Errorf("remove checkpoint %s: %w", rel, err)
	}
	return nil
}

// --- pods ---

func podRel(uid types.UID) (string, error) {
	if err := container.CheckPathSegment("pod UID", string(uid)); err != nil {
		return "", err
	}
	return filepath.Join(podsDir, string(uid)), nil
}

// podBytes is the checkpoint of pod, as written.
func podBytes(pod *v1.Pod) ([]byte, error) { return json.Marshal(pod) }

func (s *Store) writePod(uid types.UID, data []byte) error {
	rel, err := podRel(uid)
	if err != nil {
		return err
	}
	return s.write(filepath.Join(rel, podFile), data)
}

// removePod removes a pod's checkpoint and its tokens.
func (s *Store) removePod(uid types.UID) error {
	rel, err := podRel(uid)
	if err != nil {
		return err
	}
	return s.remove(rel)
}

// podFiles returns the checkpointed pods' files, by UID.
func (s *Store) podFiles() (map[types.UID][]byte, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, podsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return map[types.UID][]byte{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[types.UID][]byte, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, podsDir, e.Name(), podFile))
		if err != nil {
			// A pod directory holding only a token: its pod was never
			// checkpointed.
			out[types.UID(e.Name())] = nil
			continue
		}
		out[types.UID(e.Name())] = b
	}
	return out, nil
}

// Pods returns the checkpointed pods. A file that does not decode is
// reported in errs and left out.
func (s *Store) Pods() (pods []*v1.Pod, errs []error) {
	files, err := s.podFiles()
	if err != nil {
		return nil, []error{err}
	}
	for uid, b := range files {
		if b == nil {
			continue
		}
		pod := &v1.Pod{}
		if err := json.Unmarshal(b, pod); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint of pod %s: %w", uid, err))
			continue
		}
		if pod.UID != uid {
			errs = append(errs, fmt.Errorf("checkpoint of pod %s holds pod UID %q", uid, pod.UID))
			continue
		}
		pods = append(pods, pod)
	}
	return pods, errs
}

// --- tokens ---

func tokenRel(uid types.UID, volume string, source int) (string, error) {
	rel, err := podRel(uid)
	if err != nil {
		return "", err
	}
	if err := container.CheckPathSegment("volume name", volume); err != nil {
		return "", err
	}
	return filepath.Join(rel, fmt.Sprintf("%s%s-%d", tokenPfx, volume, source)), nil
}

func (s *Store) writeToken(uid types.UID, volume string, source int, tr *authenticationv1.TokenRequest) error {
	rel, err := tokenRel(uid, volume, source)
	if err != nil {
		return err
	}
	return s.writeSealed(rel, tr)
}

// Token returns the checkpointed token of a pod's projected volume source.
func (s *Store) Token(uid types.UID, volume string, source int) (*authenticationv1.TokenRequest, error) {
	rel, err := tokenRel(uid, volume, source)
	if err != nil {
		return nil, err
	}
	tr := &authenticationv1.TokenRequest{}
	if err := s.readSealed(rel, tr); err != nil {
		return nil, err
	}
	return tr, nil
}

// --- ConfigMaps, Secrets, Services ---

// objectRel is where an object of kind (KindConfigMap, KindSecret) lives.
func objectRel(kind, namespace, name string) (string, error) {
	if err := container.CheckPathSegment("namespace", namespace); err != nil {
		return "", err
	}
	if err := container.CheckPathSegment("name", name); err != nil {
		return "", err
	}
	if kind == kindSecret {
		return filepath.Join(secDir, namespace, name), nil
	}
	return filepath.Join(cmDir, namespace, name+".json"), nil
}

// objectKind and the names of the two kinds, as the objects package
// names them.
const (
	kindConfigMap = "ConfigMap"
	kindSecret    = "Secret"
)

func (s *Store) writeConfigMap(cm *v1.ConfigMap) error {
	rel, err := objectRel(kindConfigMap, cm.Namespace, cm.Name)
	if err != nil {
		return err
	}
	return s.writeJSON(rel, cm)
}

func (s *Store) writeSecret(sec *v1.Secret) error {
	rel, err := objectRel(kindSecret, sec.Namespace, sec.Name)
	if err != nil {
		return err
	}
	return s.writeSealed(rel, sec)
}

func (s *Store) removeObject(k objectKey) error {
	rel, err := objectRel(k.kind, k.namespace, k.name)
	if err != nil {
		return err
	}
	return s.remove(rel)
}

// ConfigMap returns a checkpointed ConfigMap.
func (s *Store) ConfigMap(namespace, name string) (*v1.ConfigMap, error) {
	rel, err := objectRel(kindConfigMap, namespace, name)
	if err != nil {
		return nil, err
	}
	cm := &v1.ConfigMap{}
	return cm, s.readJSON(rel, cm)
}

// Secret returns a checkpointed Secret.
func (s *Store) Secret(namespace, name string) (*v1.Secret, error) {
	rel, err := objectRel(kindSecret, namespace, name)
	if err != nil {
		return nil, err
	}
	sec := &v1.Secret{}
	return sec, s.readSealed(rel, sec)
}

// objectKeys lists the checkpointed ConfigMaps and Secrets.
func (s *Store) objectKeys() ([]objectKey, error) {
	var keys []objectKey
	for _, kind := range []string{kindConfigMap, kindSecret} {
		top := cmDir
		if kind == kindSecret {
			top = secDir
		}
		nss, err := os.ReadDir(filepath.Join(s.dir, top))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, ns := range nss {
			files, err := os.ReadDir(filepath.Join(s.dir, top, ns.Name()))
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				name := f.Name()
				if strings.HasPrefix(name, ".tmp-") {
					continue
				}
				if kind == kindConfigMap {
					name = strings.TrimSuffix(name, ".json")
				}
				keys = append(keys, objectKey{kind, ns.Name(), name})
			}
		}
	}
	return keys, nil
}

func servicesRel(namespace string) (string, error) {
	if err := container.CheckPathSegment("namespace", namespace); err != nil {
		return "", err
	}
	return filepath.Join(svcDir, namespace+".json"), nil
}

func (s *Store) writeServices(namespace string, svcs []*v1.Service) error {
	rel, err := servicesRel(namespace)
	if err != nil {
		return err
	}
	return s.writeJSON(rel, svcs)
}

func (s *Store) removeServices(namespace string) error {
	rel, err := servicesRel(namespace)
	if err != nil {
		return err
	}
	return s.remove(rel)
}

// Services returns the checkpointed Services of a namespace (none when
// there is no checkpoint of it).
func (s *Store) Services(namespace string) ([]*v1.Service, error) {
	rel, err := servicesRel(namespace)
	if err != nil {
		return nil, err
	}
	var svcs []*v1.Service
	if err := s.readJSON(rel, &svcs); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return svcs, nil
}

// serviceNamespaces lists the namespaces whose Services are checkpointed.
func (s *Store) serviceNamespaces() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, svcDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if ns, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, ns)
		}
	}
	return out, nil
}
