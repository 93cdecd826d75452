package credprovider

import (
	"strings"
	"sync"
	"time"

	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/image"
)

// globalCacheKey is the key of a response cached for every image; angle
// brackets keep it apart from image and registry names, as upstream's.
const globalCacheKey = "<global>"

// purgeInterval is how often expired entries that nobody asks about are
// dropped (upstream's cachePurgeInterval).
const purgeInterval = 15 * time.Minute

// cache holds one plugin's responses, each under the key its
// cacheKeyType names (the image, its registry, or every image), combined
// with the service account key in token mode, until it expires.
type cache struct {
	clock clock.Clock

	mu        sync.Mutex
	entries   map[string]cacheEntry
	lastPurge time.Time
}

type cacheEntry struct {
	auth    map[string]image.RegistryAuth
	expires time.Time
}

func newCache(clk clock.Clock) *cache {
	return &cache{clock: clk, entries: map[string]cacheEntry{}, lastPurge: clk.Now()}
}

// get returns the credentials cached for img (a repository) under any of
// its keys, most specific first.
func (c *cache) get(img, saKey string) (map[string]image.RegistryAuth, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if now.Sub(c.lastPurge) > purgeInterval {
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
		c.lastPurge = now
	}
	for _, base := range []string{img, registryOf(img), globalCacheKey} {
		k := cacheKey(base, saKey)
		e, ok := c.entries[k]
		if !ok {
			continue
		}
		if now.After(e.expires) {
			delete(c.entries, k)
			continue
		}
		return e.auth, true
	}
	return nil, false
}

// put caches a response for img until expires.
func (c *cache) put(base, saKey string, auth map[string]image.RegistryAuth, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[cacheKey(base, saKey)] = cacheEntry{auth: auth, expires: expires}
}

// cacheBase is the key a response for img is cached under, by its
// cacheKeyType; false for a type the protocol does not know.
func cacheBase(keyType credentialproviderv1.PluginCacheKeyType, img string) (string, bool) {
	switch keyType {
	case credentialproviderv1.ImagePluginCacheKeyType:
		return img, true
	case credentialproviderv1.RegistryPluginCacheKeyType:
		return registryOf(img), true
	case credentialproviderv1.GlobalPluginCacheKeyType:
		return globalCacheKey, true
	}
	return "", false
}

// expiry is when a response received at now expires: its cacheDuration,
// or the plugin's default when it gives none; false when it must not be
// cached (a duration of zero).
func expiry(resp *credentialproviderv1.CredentialProviderResponse, defaultDuration time.Duration, now time.Time) (time.Time, bool) {
	d := defaultDuration
	if resp.CacheDuration != nil {
		d = resp.CacheDuration.Duration
	}
	if d == 0 {
		return time.Time{}, false
	}
	return now.Add(d), true
}

// registryOf is the registry part of a repository (upstream's
// parseRegistry: everything before the first slash).
func registryOf(img string) string {
	registry, _, _ := strings.Cut(img, "/")
	return registry
}

// cacheKey joins a base key and a service account key unambiguously.
func cacheKey(base, saKey string) string {
	return lengthPrefixed(base, saKey)
}
