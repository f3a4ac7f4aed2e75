package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/gateway"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/store"
)

// UsageRow is a sum of the LLM gateway's usage records, grouped by project, model, day or
// user; the fields not grouped by are absent. Cost is in dollars.
type UsageRow struct {
	UserID       string  `json:"userId,omitempty"`
	ProjectID    string  `json:"projectId,omitempty"`
	ProviderID   string  `json:"providerId,omitempty"`
	ModelID      string  `json:"modelId,omitempty"`
	Day          string  `json:"day,omitempty"`
	InputTokens  int64   `json:"inputTokens"`
	OutputTokens int64   `json:"outputTokens"`
	CacheTokens  int64   `json:"cacheTokens"`
	Cost         float64 `json:"cost"`
	Requests     int64   `json:"requests"`
}

func usageRows(rows []store.UsageRow) []UsageRow {
	out := make([]UsageRow, len(rows))
	for i, r := range rows {
		out[i] = UsageRow{UserID: r.UserID, ProjectID: r.ProjectID, ProviderID: r.ProviderID, ModelID: r.ModelID, Day: r.Day,
			InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, CacheTokens: r.CacheTokens, Cost: dollars(r.CostNanos), Requests: r.Requests}
	}
	return out
}

func dollars(nanos int64) float64 { return float64(nanos) / 1e9 }

// maxUsageDays bounds a usage query's span.
const maxUsageDays = 366

// usageQuery reads from, to (UTC dates, default: this month so far) and groupBy from the query
// string; admin allows grouping by user.
func usageQuery(c *gin.Context, admin bool) (store.UsageQuery, *httperr.Error) {
	now := time.Now().UTC()
	q := store.UsageQuery{
		From:    c.DefaultQuery("from", time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)),
		To:      c.DefaultQuery("to", now.Format(time.DateOnly)),
		GroupBy: c.DefaultQuery("groupBy", store.GroupProject),
	}
	from, ferr := time.Parse(time.DateOnly, q.From)
	to, terr := time.Parse(time.DateOnly, q.To)
	switch {
	case ferr != nil:
		return q, httperr.Invalid("from", "from must be a date such as 2026-12-01.")
	case terr != nil:
		return q, httperr.Invalid("to", "to must be a date such as 2026-12-31.")
	case to.Before(from):
		return q, httperr.Invalid("to", "to must not be before from.")
	case to.Sub(from) > maxUsageDays*24*time.Hour:
		return q, httperr.Invalid("to", "Ask for at most a year at a time.")
	}
	switch q.GroupBy {
	case store.GroupProject, store.GroupModel, store.GroupDay:
	case store.GroupUser:
		if admin {
			break
		}
		fallthrough
	default:
		if admin {
			return q, httperr.Invalid("groupBy", "groupBy must be project, model, day or user.")
		}
		return q, httperr.Invalid("groupBy", "groupBy must be project, model or day.")
	}
	return q, nil
}

// apiUsage is GET /api/v1/usage: the signed-in user's usage.
func (s *Server) apiUsage(c *gin.Context) {
	q, e := usageQuery(c, false)
	if e != nil {
		s.fail(c, e)
		return
	}
	q.UserID = currentUser(c).ID
	rows, err := s.Store.Usage(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"from": q.From, "to": q.To, "groupBy": q.GroupBy, "rows": usageRows(rows)})
}

// apiUsageAll is GET /api/v1/admin/usage: every user's usage.
func (s *Server) apiUsageAll(c *gin.Context) {
	q, e := usageQuery(c, true)
	if e != nil {
		s.fail(c, e)
		return
	}
	rows, err := s.Store.Usage(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"from": q.From, "to": q.To, "groupBy": q.GroupBy, "rows": usageRows(rows)})
}

// BudgetInput sets a monthly budget in dollars; null removes it.
type BudgetInput struct {
	MonthlyUSD *float64 `json:"monthlyUsd"`
}

// maxBudgetUSD keeps a budget in what the database holds with room to spare.
const maxBudgetUSD = 1e6

func (in BudgetInput) nanos() (*int64, *httperr.Error) {
	if in.MonthlyUSD == nil {
		return nil, nil
	}
	v := *in.MonthlyUSD
	if math.IsNaN(v) || v < 0 || v > maxBudgetUSD {
		return nil, httperr.Invalid("monthlyUsd", "A monthly budget is a number of dollars from 0 to 1000000, or null for none.")
	}
	n := int64(math.Round(v * 1e9))
	return &n, nil
}

// BudgetView is where a project stands against its budgets this month. State is "none" (no
// budget applies), "ok", "warning" (80 % of a budget spent) or "reached".
type BudgetView struct {
	ProjectMonthlyUSD *float64 `json:"projectMonthlyUsd"`
	UserMonthlyUSD    *float64 `json:"userMonthlyUsd"`
	ProjectSpentUSD   float64  `json:"projectSpentUsd"`
	UserSpentUSD      float64  `json:"userSpentUsd"`
	State             string   `json:"state"`
}

// Budget states.
const (
	budgetNone    = "none"
	budgetOK      = "ok"
	budgetWarning = "warning"
	budgetReached = "reached"
)

// warnAt is the share of a budget spent from which its project warns.
const warnAt = 0.8

func (s *Server) budgetView(ctx context.Context, p *store.Project) (*BudgetView, error) {
	l, err := s.Store.Limits(ctx, p.OwnerUserID, p.ID)
	if err != nil {
		return nil, err
	}
	userSpent, projectSpent, err := s.Store.MonthSpend(ctx, p.OwnerUserID, p.ID, time.Now())
	if err != nil {
		return nil, err
	}
	v := &BudgetView{ProjectSpentUSD: dollars(projectSpent), UserSpentUSD: dollars(userSpent), State: budgetNone}
	rank := map[string]int{budgetNone: 0, budgetOK: 1, budgetWarning: 2, budgetReached: 3}
	judge := func(spent int64, limit *int64) *float64 {
		if limit == nil {
			return nil
		}
		st := budgetOK
		switch {
		case spent >= *limit:
			st = budgetReached
		case float64(spent) >= warnAt*float64(*limit):
			st = budgetWarning
		}
		if rank[st] > rank[v.State] {
			v.State = st
		}
		d := dollars(*limit)
		return &d
	}
	v.ProjectMonthlyUSD = judge(projectSpent, l.Project)
	v.UserMonthlyUSD = judge(userSpent, l.UserLimit())
	return v, nil
}

// apiProjectBudget is GET /api/v1/projects/{id}/budget.
func (s *Server) apiProjectBudget(c *gin.Context) {
	p := project(c)
	v, err := s.budgetView(c.Request.Context(), p)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"budget": v})
}

// apiSetProjectBudget is PUT /api/v1/projects/{id}/budget: the owner's budget for one project,
// at most the one an admin set them.
func (s *Server) apiSetProjectBudget(c *gin.Context) {
	p := project(c)
	var in BudgetInput
	if !bindJSON(c, s, &in) {
		return
	}
	if err := s.setProjectBudget(c.Request.Context(), p, in); err != nil {
		s.fail(c, err)
		return
	}
	s.apiProjectBudget(c)
}

func (s *Server) setProjectBudget(ctx context.Context, p *store.Project, in BudgetInput) error {
	n, e := in.nanos()
	if e != nil {
		return e
	}
	l, err := s.Store.Limits(ctx, p.OwnerUserID, "")
	if err != nil {
		return err
	}
	if ul := l.UserLimit(); n != nil && ul != nil && *n > *ul {
		return httperr.Invalid("monthlyUsd", "A project's budget can only be lower than yours ("+gateway.Dollars(*ul)+" a month); ask an admin for more.")
	}
	return s.Store.SetBudget(ctx, store.BudgetProject, p.ID, n)
}

// apiSetUserBudget is PUT /api/v1/admin/users/{id}/budget.
func (s *Server) apiSetUserBudget(c *gin.Context) {
	var in BudgetInput
	if !bindJSON(c, s, &in) {
		return
	}
	if err := s.setUserBudget(c.Request.Context(), c.Param("id"), in); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

func (s *Server) setUserBudget(ctx context.Context, userID string, in BudgetInput) error {
	n, e := in.nanos()
	if e != nil {
		return e
	}
	if _, err := s.Store.UserByID(ctx, userID); errors.Is(err, store.ErrNotFound) {
		return httperr.NotFound("user")
	} else if err != nil {
		return err
	}
	return s.Store.SetBudget(ctx, store.BudgetUser, userID, n)
}

// apiSetDefaultBudget is PUT /api/v1/admin/budget: the budget of users without their own.
func (s *Server) apiSetDefaultBudget(c *gin.Context) {
	var in BudgetInput
	if !bindJSON(c, s, &in) {
		return
	}
	n, e := in.nanos()
	if e != nil {
		s.fail(c, e)
		return
	}
	if err := s.Store.SetBudget(c.Request.Context(), store.BudgetDefault, "", n); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

// usageBar is one day's bar of the usage chart, in the SVG's units.
type usageBar struct {
	X, Y, W, H int
	Label      string
}

// usageChart draws each day's cost (or, while nothing is priced, its tokens) as a bar.
func usageChart(days []store.UsageRow) (bars []usageBar, unit string) {
	const width, height = 600, 120
	measure := func(r store.UsageRow) float64 { return dollars(r.CostNanos) }
	unit = "cost"
	var top float64
	for _, r := range days {
		top = max(top, measure(r))
	}
	if top == 0 {
		unit = "tokens"
		measure = func(r store.UsageRow) float64 { return float64(r.InputTokens + r.OutputTokens + r.CacheTokens) }
		for _, r := range days {
			top = max(top, measure(r))
		}
	}
	if top == 0 || len(days) == 0 {
		return nil, unit
	}
	w := width / len(days)
	for i, r := range days {
		h := int(measure(r) / top * height)
		label := fmt.Sprintf("%s: %s, %d tokens, %d requests", r.Day, gateway.Dollars(r.CostNanos), r.InputTokens+r.OutputTokens+r.CacheTokens, r.Requests)
		bars = append(bars, usageBar{X: i * w, Y: height - h, W: max(w-2, 1), H: h, Label: label})
	}
	return bars, unit
}

// usageLine is one row of a usage table on the page.
type usageLine struct {
	Label, Link string
	store.UsageRow
}

// usageTable is a usage table on the page: its first column's heading and its rows.
type usageTable struct {
	Heading string
	Lines   []usageLine
}

// usagePage is the signed-in user's usage by day, project and model (this month unless asked
// otherwise); an admin's also shows every user's.
func (s *Server) usagePage(c *gin.Context) {
	q, e := usageQuery(c, false)
	if e != nil {
		s.fail(c, e)
		return
	}
	ctx := c.Request.Context()
	u := currentUser(c)
	names := map[string]string{}
	if ps, err := s.Store.ProjectsByOwner(ctx, u.ID); err == nil {
		for _, p := range ps {
			names[p.ID] = p.Name
		}
	}
	usernames := map[string]string{}
	if u.Role == store.RoleAdmin {
		if us, err := s.Store.Users(ctx); err == nil {
			for _, u := range us {
				usernames[u.ID] = u.Username
			}
		}
	}
	data := gin.H{"Title": "Usage", "From": q.From, "To": q.To}
	var tables []usageTable
	for _, t := range []struct{ heading, group string }{
		{"Day", store.GroupDay}, {"Project", store.GroupProject}, {"Model", store.GroupModel}, {"User (every user's)", store.GroupUser},
	} {
		q.GroupBy, q.UserID = t.group, u.ID
		if t.group == store.GroupUser {
			if u.Role != store.RoleAdmin {
				continue
			}
			q.UserID = ""
		}
		rows, err := s.Store.Usage(ctx, q)
		if err != nil {
			s.fail(c, err)
			return
		}
		if t.group == store.GroupDay {
			data["Bars"], data["BarUnit"] = usageChart(rows)
		}
		table := usageTable{Heading: t.heading}
		for _, r := range rows {
			l := usageLine{UsageRow: r}
			switch t.group {
			case store.GroupDay:
				l.Label = r.Day
			case store.GroupProject:
				if l.Label = names[r.ProjectID]; l.Label != "" {
					l.Link = "/projects/" + r.ProjectID
				} else {
					l.Label = r.ProjectID + " (deleted)"
				}
			case store.GroupModel:
				l.Label = r.ProviderID + "/" + r.ModelID
			case store.GroupUser:
				if l.Label = usernames[r.UserID]; l.Label == "" {
					l.Label = r.UserID
				}
			}
			table.Lines = append(table.Lines, l)
		}
		tables = append(tables, table)
	}
	data["Tables"] = tables
	s.render(c, http.StatusOK, "usage.html", data)
}

// projectBudgetSubmit is the project page's budget form.
func (s *Server) projectBudgetSubmit(c *gin.Context) {
	p := project(c)
	in, e := budgetForm(c.PostForm("monthlyUsd"))
	if e != nil {
		s.fail(c, e)
		return
	}
	if err := s.setProjectBudget(c.Request.Context(), p, in); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/projects/"+p.ID)
}

// budgetForm reads a budget field of a form: dollars, or empty for none.
func budgetForm(v string) (BudgetInput, *httperr.Error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return BudgetInput{}, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return BudgetInput{}, httperr.Invalid("monthlyUsd", "A monthly budget is a number of dollars, such as 20 or 7.50, or empty for none.")
	}
	return BudgetInput{MonthlyUSD: &f}, nil
}

// userBudgetSubmit is the users page's budget form for one user.
func (s *Server) userBudgetSubmit(c *gin.Context) {
	in, e := budgetForm(c.PostForm("monthlyUsd"))
	if e != nil {
		s.fail(c, e)
		return
	}
	if err := s.setUserBudget(c.Request.Context(), c.Param("id"), in); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/users")
}

// defaultBudgetSubmit is the users page's form for the default budget.
func (s *Server) defaultBudgetSubmit(c *gin.Context) {
	in, e := budgetForm(c.PostForm("monthlyUsd"))
	if e != nil {
		s.fail(c, e)
		return
	}
	n, e := in.nanos()
	if e != nil {
		s.fail(c, e)
		return
	}
	if err := s.Store.SetBudget(c.Request.Context(), store.BudgetDefault, "", n); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/users")
}
