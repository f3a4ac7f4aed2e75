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
// project was set up with. Only what the gateway uses is read: the project's ID, OwnerUserID
// and ProviderID; the connection's ID, UserID, ProviderID, AuthType, Status, APIKeyCiphertext
// and BaseURL.
type GatewayGrant struct {
	Project    *Project
	Connection *ProviderConnection
}

// GatewayGrant finds what token allows. ErrNotFound covers every token that allows nothing:
// unknown, revoked, its project deleted or being deleted, or its connection gone or changed
// to another owner or provider. One narrow query: the gateway asks on every request an agent
// makes.
func (s *Store) GatewayGrant(ctx context.Context, token string) (*GatewayGrant, error) {
	p, c := new(Project), new(ProviderConnection)
	err := s.DB.NewRaw(`SELECT p.id, p.owner_user_id, p.provider_id,
	c.id, c.user_id, c.provider_id, c.auth_type, c.status, COALESCE(c.api_key_ciphertext, ''), COALESCE(c.base_url, '')
FROM gateway_tokens AS t
JOIN projects AS p ON p.id = t.project_id
JOIN provider_connections AS c ON c.id = t.connection_id
WHERE t.token_hash = ? AND p.deleted_at IS NULL AND p.status NOT IN (?)
	AND c.user_id = p.owner_user_id AND c.provider_id = p.provider_id`,
		hashToken(token), bun.List([]status.Project{status.Deleting, status.Deleted})).
		Scan(ctx, &p.ID, &p.OwnerUserID, &p.ProviderID,
			&c.ID, &c.UserID, &c.ProviderID, &c.AuthType, &c.Status, &c.APIKeyCiphertext, &c.BaseURL)
	if err != nil {
		return nil, notFound(err)
	}
	return &GatewayGrant{Project: p, Connection: c}, nil
}
