package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// UsageRecord is one request the LLM gateway forwarded: the tokens the provider counted
// (input without cached input, which is CacheTokens), what they cost, how long it took.
type UsageRecord struct {
	bun.BaseModel `bun:"table:usage_records"`

	ID           string    `bun:"id,pk"`
	UserID       string    `bun:"user_id"`
	ProjectID    string    `bun:"project_id"`
	ProviderID   string    `bun:"provider_id"`
	ModelID      string    `bun:"model_id"`
	Day          string    `bun:"day"`
	CreatedAt    time.Time `bun:"created_at"`
	InputTokens  int64     `bun:"input_tokens"`
	OutputTokens int64     `bun:"output_tokens"`
	CacheTokens  int64     `bun:"cache_tokens"`
	CostNanos    int64     `bun:"cost_nanos"` // billionths of a dollar
	LatencyMS    int64     `bun:"latency_ms"`
	Status       int       `bun:"status"`
}

// RecordUsage stores one forwarded request.
func (s *Store) RecordUsage(ctx context.Context, u *UsageRecord) error {
	if u.ID == "" {
		u.ID = NewID()
	}
	u.CreatedAt = u.CreatedAt.UTC()
	u.Day = u.CreatedAt.Format(time.DateOnly)
	if _, err := s.DB.NewInsert().Model(u).Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to record usage: %w", err)
	}
	return nil
}

// Usage groupings: the columns a usage summary is grouped by.
const (
	GroupProject = "project"
	GroupModel   = "model"
	GroupDay     = "day"
	GroupUser    = "user"
)

// UsageQuery selects and groups usage rows. Days are UTC dates, YYYY-MM-DD, both included.
type UsageQuery struct {
	UserID  string // "" for every user's (admins)
	From    string
	To      string
	GroupBy string // GroupProject, GroupModel, GroupDay or GroupUser
}

// UsageRow is a summary of usage rows; the fields not grouped by are empty.
type UsageRow struct {
	UserID       string `bun:"user_id"`
	ProjectID    string `bun:"project_id"`
	ProviderID   string `bun:"provider_id"`
	ModelID      string `bun:"model_id"`
	Day          string `bun:"day"`
	InputTokens  int64  `bun:"input_tokens"`
	OutputTokens int64  `bun:"output_tokens"`
	CacheTokens  int64  `bun:"cache_tokens"`
	CostNanos    int64  `bun:"cost_nanos"`
	Requests     int64  `bun:"requests"`
}

// groupColumns are the columns each grouping keeps.
var groupColumns = map[string][]string{
	GroupProject: {"project_id"},
	GroupModel:   {"provider_id", "model_id"},
	GroupDay:     {"day"},
	GroupUser:    {"user_id"},
}

// Usage sums usage rows by q.GroupBy, largest cost first (by day: oldest day first).
func (s *Store) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	cols, ok := groupColumns[q.GroupBy]
	if !ok {
		return nil, fmt.Errorf("store: unknown usage grouping %q", q.GroupBy)
	}
	sel := s.DB.NewSelect().Model((*UsageRecord)(nil)).
		ColumnExpr("SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, SUM(cache_tokens) AS cache_tokens").
		ColumnExpr("SUM(cost_nanos) AS cost_nanos, COUNT(*) AS requests").
		Where("day >= ?", q.From).Where("day <= ?", q.To)
	for _, c := range cols {
		sel = sel.Column(c).Group(c)
	}
	if q.UserID != "" {
		sel = sel.Where("user_id = ?", q.UserID)
	}
	if q.GroupBy == GroupDay {
		sel = sel.Order("day")
	} else {
		sel = sel.OrderExpr("cost_nanos DESC, requests DESC")
	}
	var rows []UsageRow
	if err := sel.Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: unable to sum usage: %w", err)
	}
	return rows, nil
}

// MonthSpend is what userID, and their project projectID, spent in the UTC month of now, in
// billionths of a dollar.
func (s *Store) MonthSpend(ctx context.Context, userID, projectID string, now time.Time) (user, project int64, err error) {
	now = now.UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	var rows []struct {
		ProjectID string `bun:"project_id"`
		Cost      int64  `bun:"cost"`
	}
	err = s.DB.NewSelect().Model((*UsageRecord)(nil)).Column("project_id").ColumnExpr("SUM(cost_nanos) AS cost").
		Where("user_id = ?", userID).Where("day >= ?", first).Group("project_id").Scan(ctx, &rows)
	if err != nil {
		return 0, 0, fmt.Errorf("store: unable to sum this month's spend: %w", err)
	}
	for _, r := range rows {
		user += r.Cost
		if r.ProjectID == projectID {
			project = r.Cost
		}
	}
	return user, project, nil
}
