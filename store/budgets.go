package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Budget scopes: the default every user has unless an admin set theirs, a user's, and a
// project's (at most its owner's).
const (
	BudgetDefault = "default"
	BudgetUser    = "user"
	BudgetProject = "project"
)

// Budget is a monthly spending limit, in billionths of a dollar.
type Budget struct {
	bun.BaseModel `bun:"table:budgets"`

	Scope        string    `bun:"scope,pk"`
	SubjectID    string    `bun:"subject_id,pk"`
	MonthlyNanos int64     `bun:"monthly_nanos"`
	UpdatedAt    time.Time `bun:"updated_at"`
}

// SetBudget sets the monthly budget of scope and subject (the user or project id; "" for the
// default), or removes it when nanos is nil.
func (s *Store) SetBudget(ctx context.Context, scope, subjectID string, nanos *int64) error {
	if nanos == nil {
		_, err := s.DB.NewDelete().Model((*Budget)(nil)).Where("scope = ?", scope).Where("subject_id = ?", subjectID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to remove budget: %w", err)
		}
		return nil
	}
	b := &Budget{Scope: scope, SubjectID: subjectID, MonthlyNanos: *nanos, UpdatedAt: time.Now().UTC()}
	_, err := s.DB.NewInsert().Model(b).On("CONFLICT (scope, subject_id) DO UPDATE").
		Set("monthly_nanos = EXCLUDED.monthly_nanos").Set("updated_at = EXCLUDED.updated_at").Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to set budget: %w", err)
	}
	return nil
}

// Limits are the monthly budgets that apply to a project; nil where none is set.
type Limits struct {
	Default *int64 // the admin's default for users without their own
	User    *int64 // the admin's for this user
	Project *int64 // the owner's for this project
}

// UserLimit is the budget the user's whole spending is held to: their own, else the default.
func (l Limits) UserLimit() *int64 {
	if l.User != nil {
		return l.User
	}
	return l.Default
}

// Limits reads the budgets that apply to userID's project projectID ("" for the user's alone).
func (s *Store) Limits(ctx context.Context, userID, projectID string) (Limits, error) {
	var bs []Budget
	err := s.DB.NewSelect().Model(&bs).WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.WhereOr("scope = ? AND subject_id = ''", BudgetDefault).
			WhereOr("scope = ? AND subject_id = ?", BudgetUser, userID).
			WhereOr("scope = ? AND subject_id = ?", BudgetProject, projectID)
	}).Scan(ctx)
	if err != nil {
		return Limits{}, fmt.Errorf("store: unable to read budgets: %w", err)
	}
	var l Limits
	for _, b := range bs {
		n := b.MonthlyNanos
		switch b.Scope {
		case BudgetDefault:
			l.Default = &n
		case BudgetUser:
			l.User = &n
		case BudgetProject:
			l.Project = &n
		}
	}
	return l, nil
}

// Budgets lists the budgets of scope by subject id.
func (s *Store) Budgets(ctx context.Context, scope string) (map[string]int64, error) {
	var bs []Budget
	if err := s.DB.NewSelect().Model(&bs).Where("scope = ?", scope).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list budgets: %w", err)
	}
	out := make(map[string]int64, len(bs))
	for _, b := range bs {
		out[b.SubjectID] = b.MonthlyNanos
	}
	return out, nil
}
