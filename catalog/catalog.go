// Package catalog is the pinned OpenCode's own model catalog (GET /provider of a running
// workspace), reduced to the providers doce offers: model ids, names, limits and prices: the web
// tier's model lists and the LLM gateway's costs. OpenCode's answer also holds the workspace's stored
// credentials in plain text: it is decoded into types without them and never passed on.
package catalog

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/providers"
)

// Price is what a model costs, in dollars per million tokens.
type Price struct {
	Input, Output, CacheRead, CacheWrite float64
}

// Zero reports whether the catalog names no price.
func (p Price) Zero() bool { return p == Price{} }

// Nanos is what the tokens cost at p, in billionths of a dollar.
func (p Price) Nanos(input, output, cacheRead, cacheWrite int64) int64 {
	// Dollars per million tokens is thousandths of a nano-dollar per token.
	return int64(math.Round(1000 * (float64(input)*p.Input + float64(output)*p.Output +
		float64(cacheRead)*p.CacheRead + float64(cacheWrite)*p.CacheWrite)))
}

// Model is one model of a provider.
type Model struct {
	ID      string
	Name    string
	Context int64
	Output  int64
	Price   Price
}

// Catalog holds each user's catalog. A workspace is hostile code and could answer any catalog
// it likes, so a user's catalog is read from one of their own workspaces and used for them only:
// another user's workspace never decides which models someone is offered or what their tokens
// cost.
type Catalog struct {
	mu     sync.Mutex
	byUser map[string]*userCatalog
}

type userCatalog struct {
	byID     map[string][]Model
	lastTry  time.Time
	fetching bool
}

// retry is how soon a failed read is tried again; maxUsers is how many users' catalogs are kept
// (a few kB each; one more forgets another, which is read again when needed).
const (
	retry    = time.Minute
	maxUsers = 1000
)

// Models returns a provider's models for userID, sorted by id, and false while their catalog
// has not been read.
func (c *Catalog) Models(userID, providerID string) ([]Model, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uc := c.byUser[userID]
	if uc == nil || uc.byID == nil {
		return nil, false
	}
	ms, ok := uc.byID[providerID]
	return ms, ok
}

// Price returns a model's price for userID; false when their catalog is not read or has none
// for it.
func (c *Catalog) Price(userID, providerID, modelID string) (Price, bool) {
	ms, _ := c.Models(userID, providerID)
	i, found := slices.BinarySearchFunc(ms, modelID, func(m Model, id string) int { return strings.Compare(m.ID, id) })
	if !found || ms[i].Price.Zero() {
		return Price{}, false
	}
	return ms[i].Price, true
}

// Loaded reports whether userID's catalog has been read.
func (c *Catalog) Loaded(userID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	uc := c.byUser[userID]
	return uc != nil && uc.byID != nil
}

// Load reads userID's catalog from oc, a workspace of theirs, unless it was read, or tried
// lately.
func (c *Catalog) Load(ctx context.Context, userID string, oc *opencode.Client) {
	c.mu.Lock()
	if c.byUser == nil {
		c.byUser = map[string]*userCatalog{}
	}
	uc := c.byUser[userID]
	if uc == nil {
		if len(c.byUser) >= maxUsers {
			for id := range c.byUser { // any one
				delete(c.byUser, id)
				break
			}
		}
		uc = &userCatalog{}
		c.byUser[userID] = uc
	}
	if uc.byID != nil || uc.fetching || time.Since(uc.lastTry) < retry {
		c.mu.Unlock()
		return
	}
	uc.fetching, uc.lastTry = true, time.Now()
	c.mu.Unlock()
	all, err := oc.Catalog(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	uc.fetching = false
	if err != nil || len(all) == 0 {
		return
	}
	uc.byID = reduce(all)
}

func reduce(all []opencode.CatalogProvider) map[string][]Model {
	by := map[string][]Model{}
	for _, pr := range all {
		if _, known := providers.Lookup(pr.ID); !known {
			continue
		}
		ms := make([]Model, 0, len(pr.Models))
		for id, m := range pr.Models {
			if m.ID == "" {
				m.ID = id
			}
			ms = append(ms, Model{ID: m.ID, Name: m.Name, Context: int64(m.Limit.Context), Output: int64(m.Limit.Output),
				Price: Price{Input: m.Cost.Input, Output: m.Cost.Output, CacheRead: m.Cost.CacheRead, CacheWrite: m.Cost.CacheWrite}})
		}
		slices.SortFunc(ms, func(a, b Model) int { return strings.Compare(a.ID, b.ID) })
		by[pr.ID] = ms
	}
	return by
}
