package activities

import (
	"context"
	"errors"
	"strconv"

	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// Connections changes provider connections for workflows.
type Connections struct {
	Store *store.Store
}

// MarkRevoked stops a connection being used by new setups while it is being disconnected.
func (a *Connections) MarkRevoked(ctx context.Context, in workflows.DisconnectInput) error {
	err := a.Store.SetConnectionStatus(ctx, in.UserID, in.ProviderID, store.ConnRevoked)
	if errors.Is(err, store.ErrNotFound) {
		return nil // already gone: a re-run after the delete
	}
	return err
}

// ProjectsUsing lists the user's live projects set up with the provider.
func (a *Connections) ProjectsUsing(ctx context.Context, in workflows.ConnectionRef) ([]string, error) {
	ps, err := a.Store.ProjectsUsingProvider(ctx, in.UserID, in.ProviderID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids, nil
}

// Delete removes the connection row.
func (a *Connections) Delete(ctx context.Context, in workflows.DisconnectInput) error {
	return a.Store.DeleteConnection(ctx, in.UserID, in.ProviderID, in.RequestedBy)
}

// Rewrap moves stored ciphertexts to the newest Transit key version.
type Rewrap struct {
	Store   *store.Store
	Secrets KeyRewrapper
}

// RewrapPage rewraps the ciphertexts of one page of rows whose version is older than the
// newest.
func (a *Rewrap) RewrapPage(ctx context.Context, in workflows.RewrapPageInput) (workflows.RewrapPageResult, error) {
	// Vault's answers (a restart ridden out, a page's batch) take longer than the database's:
	// heartbeat throughout, not between rows.
	stop := heartbeatWhile(ctx)
	defer stop()
	info, err := a.Secrets.Info(ctx)
	if err != nil {
		return workflows.RewrapPageResult{}, err
	}
	page := a.table(in.Table)
	if page == nil {
		return workflows.RewrapPageResult{}, temporal.NewNonRetryableApplicationError("unknown table "+in.Table, workflows.ErrTypeBadInput, nil)
	}
	rows, err := page(ctx, in.AfterID, in.PageSize)
	if err != nil {
		return workflows.RewrapPageResult{}, err
	}
	res := workflows.RewrapPageResult{LastID: in.AfterID, Seen: len(rows)}
	var items []secrets.Sealed
	var targets []*string
	var touched []sealedRow
	for _, r := range rows {
		res.LastID = r.id
		stale := r.stale(info.LatestVersion)
		for _, f := range stale {
			items = append(items, secrets.Sealed{Ciphertext: *f.ct, Context: f.context})
			targets = append(targets, f.ct)
		}
		if len(stale) > 0 {
			touched = append(touched, r)
		}
	}
	rewrapped, err := a.Secrets.Rewrap(ctx, items)
	if err != nil {
		return res, err
	}
	for i, ct := range rewrapped {
		*targets[i] = ct
	}
	for _, r := range touched {
		if err := r.save(ctx, info.LatestVersion); err != nil {
			return res, err
		}
	}
	res.Rewrapped = len(items)
	return res, nil
}

// CountStale counts ciphertexts made with a key version older than the newest.
func (a *Rewrap) CountStale(ctx context.Context, pageSize int) (workflows.StaleResult, error) {
	stop := heartbeatWhile(ctx)
	defer stop()
	info, err := a.Secrets.Info(ctx)
	if err != nil {
		return workflows.StaleResult{}, err
	}
	out := workflows.StaleResult{Latest: info.LatestVersion}
	for _, table := range []string{workflows.TableConnections, workflows.TableProjects, workflows.TablePool, workflows.TableForges} {
		page := a.table(table)
		for after := ""; ; {
			rows, err := page(ctx, after, pageSize)
			if err != nil {
				return out, err
			}
			for _, r := range rows {
				out.Stale += len(r.stale(info.LatestVersion))
				after = r.id
			}
			if len(rows) < pageSize {
				break
			}
		}
	}
	return out, nil
}

// sealedRow is a row holding Transit ciphertext, as a rewrap sees it: its id, its ciphertext
// fields, and how it is stored again once they are rewrapped.
type sealedRow struct {
	id     string
	fields []sealedField
	save   func(ctx context.Context, latest int) error
}

// sealedField is one ciphertext of a row and the Transit context it is bound to.
type sealedField struct {
	ct      *string
	context string
}

// stale lists the row's ciphertexts made with a key version older than latest.
func (r sealedRow) stale(latest int) []sealedField {
	var out []sealedField
	for _, f := range r.fields {
		if *f.ct != "" && secrets.KeyVersion(*f.ct) < latest {
			out = append(out, f)
		}
	}
	return out
}

// rowPage reads the rows with ids after afterID, in id order, limit at most.
type rowPage func(ctx context.Context, afterID string, limit int) ([]sealedRow, error)

// table is how the rows of the table named are paged; nil for a table it does not know.
func (a *Rewrap) table(name string) rowPage {
	switch name {
	case workflows.TableConnections:
		return a.connectionRows
	case workflows.TableProjects:
		return a.projectRows
	case workflows.TablePool:
		return a.poolRows
	case workflows.TableForges:
		return a.forgeRows
	}
	return nil
}

// connectionRows is a page of provider connections with their secrets.
func (a *Rewrap) connectionRows(ctx context.Context, afterID string, limit int) ([]sealedRow, error) {
	cs, err := a.Store.ConnectionsPage(ctx, afterID, limit)
	return sealedRows(cs, err, func(c *store.ProviderConnection) sealedRow {
		field := func(ct *string, name string) sealedField {
			return sealedField{ct, secrets.ConnectionContext(c.UserID, c.ProviderID, name)}
		}
		return sealedRow{id: c.ID, fields: []sealedField{
			field(&c.APIKeyCiphertext, secrets.FieldAPIKey),
			field(&c.OAuthRefreshCiphertext, secrets.FieldOAuthRefresh),
			field(&c.OAuthAccessCiphertext, secrets.FieldOAuthAccess),
			field(&c.WellKnownCiphertext, secrets.FieldWellKnown),
		}, save: func(ctx context.Context, latest int) error {
			c.KeyVersion = latest
			return a.Store.UpdateConnectionCiphertexts(ctx, c)
		}}
	})
}

// projectRows is a page of projects with their OpenCode server passwords.
func (a *Rewrap) projectRows(ctx context.Context, afterID string, limit int) ([]sealedRow, error) {
	ps, err := a.Store.ProjectsPage(ctx, afterID, limit)
	return sealedRows(ps, err, func(p *store.Project) sealedRow {
		password := sealedField{&p.ServerPasswordCiphertext, secrets.ProjectContext(p.ID, fieldServerPassword)}
		return sealedRow{id: p.ID, fields: []sealedField{password}, save: func(ctx context.Context, _ int) error {
			return a.Store.SetProjectPassword(ctx, p.ID, p.ServerPasswordCiphertext)
		}}
	})
}

// poolRows is a page of prebuilt workspaces with their OpenCode server passwords, sealed for
// the project that will claim them.
func (a *Rewrap) poolRows(ctx context.Context, afterID string, limit int) ([]sealedRow, error) {
	ws, err := a.Store.PoolPage(ctx, afterID, limit)
	return sealedRows(ws, err, func(w *store.PoolWorkspace) sealedRow {
		password := sealedField{&w.ServerPasswordCiphertext, secrets.ProjectContext(w.ID, fieldServerPassword)}
		return sealedRow{id: w.ID, fields: []sealedField{password}, save: func(ctx context.Context, _ int) error {
			return a.Store.SetPoolPassword(ctx, w.ID, w.ServerPasswordCiphertext)
		}}
	})
}

// forgeRows is a page of forge connections with their tokens.
func (a *Rewrap) forgeRows(ctx context.Context, afterID string, limit int) ([]sealedRow, error) {
	fs, err := a.Store.ForgeConnectionsPage(ctx, afterID, limit)
	return sealedRows(fs, err, func(f *store.ForgeConnection) sealedRow {
		token := sealedField{&f.TokenCiphertext, secrets.ForgeContext(f.UserID, f.ID)}
		return sealedRow{id: f.ID, fields: []sealedField{token}, save: func(ctx context.Context, latest int) error {
			f.KeyVersion = latest
			return a.Store.UpdateForgeCiphertext(ctx, f)
		}}
	})
}

// sealedRows is a page of rows as sealedRow says them; of refers to the row in place, so a
// rewrap writes into the row it saves.
func sealedRows[T any](rows []T, err error, of func(*T) sealedRow) ([]sealedRow, error) {
	out := make([]sealedRow, len(rows))
	for i := range rows {
		out[i] = of(&rows[i])
	}
	return out, err
}

// RetireOldVersions makes key versions below v stop decrypting, and records it.
func (a *Rewrap) RetireOldVersions(ctx context.Context, v int) error {
	stop := heartbeatWhile(ctx)
	defer stop()
	// doce's own signing keys (a handful of rows) are rewrapped here, just before the old
	// versions stop decrypting, rather than paged like users' secrets.
	keys, err := a.Store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if secrets.KeyVersion(k.Ciphertext) >= v {
			continue
		}
		out, err := a.Secrets.Rewrap(ctx, []secrets.Sealed{{Ciphertext: k.Ciphertext, Context: secrets.SigningKeyContext(k.Name)}})
		if err != nil {
			return err
		}
		if err := a.Store.ReplaceSigningKeyCiphertext(ctx, k.Name, k.Ciphertext, out[0]); err != nil {
			return err
		}
	}
	if err := a.Secrets.SetMinDecryptionVersion(ctx, v); err != nil {
		return err
	}
	return a.Store.Audit(ctx, nil, store.AuditEvent{ActorID: "system", Action: "key.rewrap", TargetType: "transit-key", TargetID: "current", Detail: "older versions retired; minimum decryption version " + strconv.Itoa(v)})
}
