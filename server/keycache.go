package server

import (
	"context"
	"sync"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// keyCacheTTL is how long a key looked up by its hash is trusted without
// asking the store again. Every request needs its key, and a store lookup
// each time is a noticeable share of a write's CPU under load; the price
// is that a revocation (made by `feedbackd keys revoke`, maybe on another
// replica) takes effect within this time rather than at once.
const keyCacheTTL = time.Second

// keyCacheMax bounds the cache; past it the cache starts over. Only keys
// that exist are cached, so guessing keys cannot fill it.
const keyCacheMax = 10_000

// keyCache remembers API keys by hash for keyCacheTTL.
type keyCache struct {
	mu      sync.RWMutex
	entries map[string]cachedKey
}

type cachedKey struct {
	key     *store.APIKey
	fetched time.Time
}

// lookup returns the key with this hash, from the cache when it was
// fetched less than keyCacheTTL before now, else from the store.
func (c *keyCache) lookup(ctx context.Context, st store.Store, hash []byte, now time.Time) (*store.APIKey, error) {
	c.mu.RLock()
	e, ok := c.entries[string(hash)]
	c.mu.RUnlock()
	if ok && now.Sub(e.fetched) < keyCacheTTL && !now.Before(e.fetched) {
		return e.key, nil
	}
	k, err := st.APIKeyByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= keyCacheMax {
		c.entries = map[string]cachedKey{}
	}
	c.entries[string(hash)] = cachedKey{key: k, fetched: now}
	c.mu.Unlock()
	return k, nil
}

// touched records in the cached copy that the key was used at, so that
// the next requests within touchEvery do not record it again.
func (c *keyCache) touched(hash []byte, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[string(hash)]; ok {
		k := *e.key
		k.LastUsedAt = &at
		c.entries[string(hash)] = cachedKey{key: &k, fetched: e.fetched}
	}
}
