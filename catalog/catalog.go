// Package catalog is the pinned OpenCode's own model catalog (GET /provider of a running
// workspace), reduced to the providers doce offers: model ids, names, limits and prices. Every
// workspace runs the same pinned OpenCode, so one read serves the whole process: the web tier's
// model lists and the LLM gateway's costs. OpenCode's answer also holds the workspace's stored
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

// Catalog is read once, from the first workspace that answers.
type Catalog struct {
	mu       sync.Mutex
	byID     map[string][]Model
	lastTry  time.Time
	fetching bool
}

// retry is how soon a failed read is tried again.
const retry = time.Minute

// Models returns a provider's models, sorted by id, and false while the catalog has not been
// read.
func (c *Catalog) Models(providerID string) ([]Model, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		return nil, false
	}
	ms, ok := c.byID[providerID]
	return ms, ok
}

// Price returns a model's price; false when the catalog is not read or has none for it.
func (c *Catalog) Price(providerID, modelID string) (Price, bool) {
	ms, _ := c.Models(providerID)
	i, found := slices.BinarySearchFunc(ms, modelID, func(m Model, id string) int { return strings.Compare(m.ID, id) })
	if !found || ms[i].Price.Zero() {
		return Price{}, false
	}
	return ms[i].Price, true
}

// Loaded reports whether the catalog has been read.
func (c *Catalog) Loaded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID != nil
}

// Load reads the catalog from oc unless it was read, or tried lately.
func (c *Catalog) Load(ctx context.Context, oc *opencode.Client) {
	c.mu.Lock()
	if c.byID != nil || c.fetching || time.Since(c.lastTry) < retry {
		c.mu.Unlock()
		return
	}
	c.fetching, c.lastTry = true, time.Now()
	c.mu.Unlock()
	all, err := oc.Catalog(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetching = false
	if err != nil || len(all) == 0 {
		return
	}
	c.byID = reduce(all)
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
