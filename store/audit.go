package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// AuditEvent records who did what to which target. It never holds a secret.
type AuditEvent struct {
	bun.BaseModel `bun:"table:audit_events"`

	ID         int64     `bun:"id,pk,autoincrement" json:"id"`
	ActorID    string    `bun:"actor_id" json:"actorId"`
	Action     string    `bun:"action" json:"action"`
	TargetType string    `bun:"target_type" json:"targetType"`
	TargetID   string    `bun:"target_id" json:"targetId"`
	Detail     string    `bun:"detail" json:"detail"`
	CreatedAt  time.Time `bun:"created_at" json:"createdAt"`
}

// Audit records an event.
func (s *Store) Audit(ctx context.Context, db bun.IDB, ev AuditEvent) error {
	if db == nil {
		db = s.DB
	}
	ev.CreatedAt = time.Now().UTC()
	if _, err := db.NewInsert().Model(&ev).Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to record audit event %s: %w", ev.Action, err)
	}
	return nil
}

// AuditEventsByActor lists the newest events done by actorID.
func (s *Store) AuditEventsByActor(ctx context.Context, actorID string, limit int) ([]AuditEvent, error) {
	evs := []AuditEvent{} // an empty list, not null, in JSON
	err := s.DB.NewSelect().Model(&evs).Where("actor_id = ?", actorID).Order("id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to list audit events: %w", err)
	}
	return evs, nil
}

// AuditEvents lists the newest events of everyone, for administrators.
func (s *Store) AuditEvents(ctx context.Context, limit int) ([]AuditEvent, error) {
	evs := []AuditEvent{}
	if err := s.DB.NewSelect().Model(&evs).Order("id DESC").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list audit events: %w", err)
	}
	return evs, nil
}
