package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/doce-dev/doce/status"
)

// GatewayTokenPrefix starts every gateway token, so one found in a log or a file is easy to
// recognise.
const GatewayTokenPrefix = "doce_gw_"

// GatewayToken lets a project's OpenCode use its owner's connection through the LLM gateway.
// Only its hash is stored; the token itself exists in the activity that hands it to OpenCode
// and in the workspace.
type GatewayToken struct {
	bun.BaseModel `bun:"table:gateway_tokens"`

	ProjectID    string    `bun:"project_id,pk"`
	TokenHash    string    `bun:"token_hash"`
	ConnectionID string    `bun:"connection_id"`
	CreatedAt    time.Time `bun:"created_at"`
}

// IssueGatewayToken makes a new gateway token for projectID, bound to connectionID, and
// returns it. The project's earlier token stops working at once.
func (s *Store) IssueGatewayToken(ctx context.Context, projectID, connectionID string) (string, error) {
	token := GatewayTokenPrefix + base64.RawURLEncoding.EncodeToString(RandomToken(32))
	t := &GatewayToken{ProjectID: projectID, TokenHash: hashToken(token), ConnectionID: connectionID, CreatedAt: time.Now().UTC()}
	_, err := s.DB.NewInsert().Model(t).
		On("CONFLICT (project_id) DO UPDATE").
		Set("token_hash = EXCLUDED.token_hash").Set("connection_id = EXCLUDED.connection_id").Set("created_at = EXCLUDED.created_at").
		Exec(ctx)
	if err != nil {
		return "", fmt.Errorf("store: unable to issue gateway token: %w", err)
	}
	return token, nil
}

// RevokeGatewayToken makes projectID's gateway token stop working.
func (s *Store) RevokeGatewayToken(ctx context.Context, projectID string) error {
	if _, err := s.DB.NewDelete().Model((*GatewayToken)(nil)).Where("project_id = ?", projectID).Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to revoke gateway token: %w", err)
	}
	return nil
}

// revokeConnectionTokens revokes every gateway token issued for the user's connection to
// providerID: its credential changed, and projects get new tokens when it is handed over.
func revokeConnectionTokens(ctx context.Context, db bun.IDB, userID, providerID string) error {
	_, err := db.NewDelete().Model((*GatewayToken)(nil)).
		Where("connection_id IN (?)", db.NewSelect().Model((*ProviderConnection)(nil)).Column("id").
			Where("user_id = ?", userID).Where("provider_id = ?", providerID)).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to revoke gateway tokens: %w", err)
	}
	return nil
}

// GatewayGrant is what a gateway token allows: its project, and the owner's connection the
// project was set up with.
type GatewayGrant struct {
	Project    *Project
	Connection *ProviderConnection
}

// GatewayGrant finds what token allows. ErrNotFound covers every token that allows nothing:
// unknown, revoked, its project deleted or being deleted, or its connection gone or changed
// to another owner or provider.
func (s *Store) GatewayGrant(ctx context.Context, token string) (*GatewayGrant, error) {
	t := new(GatewayToken)
	if err := s.DB.NewSelect().Model(t).Where("token_hash = ?", hashToken(token)).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	p := new(Project)
	err := s.DB.NewSelect().Model(p).Where("id = ?", t.ProjectID).Where("deleted_at IS NULL").
		Where("status NOT IN (?)", bun.In([]status.Project{status.Deleting, status.Deleted})).Scan(ctx)
	if err != nil {
		return nil, notFound(err)
	}
	c := new(ProviderConnection)
	err = s.DB.NewSelect().Model(c).Where("id = ?", t.ConnectionID).
		Where("user_id = ?", p.OwnerUserID).Where("provider_id = ?", p.ProviderID).Scan(ctx)
	if err != nil {
		return nil, notFound(err)
	}
	return &GatewayGrant{Project: p, Connection: c}, nil
}
