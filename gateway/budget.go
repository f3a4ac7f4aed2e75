package gateway

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/doce-dev/doce/catalog"
	"github.com/doce-dev/doce/store"
)

// price is a model's price from the owner's catalog, read from the project's OpenCode the first
// time.
func (g *Gateway) price(ctx context.Context, p *store.Project, providerID, modelID string) (catalog.Price, bool) {
	if g.Catalog == nil {
		return catalog.Price{}, false
	}
	if !g.Catalog.Loaded(p.OwnerUserID) && g.LoadCatalog != nil {
		g.LoadCatalog(ctx, p.ID)
	}
	return g.Catalog.Price(p.OwnerUserID, providerID, modelID)
}

// overBudget reports whether a request of bodyLen bytes for model would pass the project's or
// its owner's monthly budget, with the message the conversation shows. Before the answer, only
// the request's input can be priced: about four bytes a token.
func (g *Gateway) overBudget(ctx context.Context, grant *store.GatewayGrant, model string, bodyLen int) (string, bool, error) {
	p := grant.Project
	l, err := g.Store.Limits(ctx, p.OwnerUserID, p.ID)
	if err != nil || (l.UserLimit() == nil && l.Project == nil) {
		return "", false, err
	}
	userSpent, projectSpent, err := g.Store.MonthSpend(ctx, p.OwnerUserID, p.ID, time.Now())
	if err != nil {
		return "", false, err
	}
	var next int64
	if g.Catalog != nil { // not loaded here: a budget check must not wait for it
		if price, ok := g.Catalog.Price(p.OwnerUserID, p.ProviderID, model); ok {
			next = price.Nanos(int64(bodyLen/4), 0, 0, 0)
		}
	}
	passes := func(spent, limit int64) bool { return spent >= limit || spent+next > limit }
	if l.Project != nil && passes(projectSpent, *l.Project) {
		return "doce: this project's monthly budget of " + Dollars(*l.Project) + " is reached — raise it on the project page in doce.", true, nil
	}
	if ul := l.UserLimit(); ul != nil && passes(userSpent, *ul) {
		return "doce: your monthly budget of " + Dollars(*ul) + " is reached — ask an admin.", true, nil
	}
	return "", false, nil
}

// Dollars formats billionths of a dollar for people: $20, $0.50, $0.0012.
func Dollars(nanos int64) string {
	d := float64(nanos) / 1e9
	if nanos%1e9 == 0 {
		return "$" + strconv.FormatInt(nanos/1e9, 10)
	}
	prec := 2
	if d < 0.01 {
		prec = 6
	}
	s := strconv.FormatFloat(d, 'f', prec, 64)
	if prec > 2 {
		s = strings.TrimRight(s, "0")
	}
	return "$" + s
}
