package activities

import (
	"context"
	"errors"
	"strconv"

	"go.temporal.io/sdk/activity"
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
	Secrets *secrets.Transit
}

// RewrapPage rewraps the ciphertexts of one page of rows whose version is older than the
// newest, heartbeating the rows done.
func (a *Rewrap) RewrapPage(ctx context.Context, in workflows.RewrapPageInput) (workflows.RewrapPageResult, error) {
	info, err := a.Secrets.Info(ctx)
	if err != nil {
		return workflows.RewrapPageResult{}, err
	}
	switch in.Table {
	case workflows.TableConnections:
		return a.connectionsPage(ctx, in, info.LatestVersion)
	case workflows.TableProjects:
		return a.projectsPage(ctx, in, info.LatestVersion)
	}
	return workflows.RewrapPageResult{}, temporal.NewNonRetryableApplicationError("unknown table "+in.Table, workflows.ErrTypeBadInput, nil)
}

// secretFields lists a connection's ciphertext fields with their Transit context field names.
func secretFields(c *store.ProviderConnection) []struct {
	ct    *string
	field string
} {
	return []struct {
		ct    *string
		field string
	}{
		{&c.APIKeyCiphertext, secrets.FieldAPIKey},
		{&c.OAuthRefreshCiphertext, secrets.FieldOAuthRefresh},
		{&c.OAuthAccessCiphertext, secrets.FieldOAuthAccess},
		{&c.WellKnownCiphertext, secrets.FieldWellKnown},
	}
}

func (a *Rewrap) connectionsPage(ctx context.Context, in workflows.RewrapPageInput, latest int) (workflows.RewrapPageResult, error) {
	rows, err := a.Store.ConnectionsPage(ctx, in.AfterID, in.PageSize)
	if err != nil {
		return workflows.RewrapPageResult{}, err
	}
	res := workflows.RewrapPageResult{LastID: in.AfterID, Seen: len(rows)}
	var items []secrets.Sealed
	var targets []*string
	var touched []*store.ProviderConnection
	for i := range rows {
		c := &rows[i]
		res.LastID = c.ID
		stale := false
		for _, f := range secretFields(c) {
			if *f.ct != "" && secrets.KeyVersion(*f.ct) < latest {
				items = append(items, secrets.Sealed{Ciphertext: *f.ct, Context: secrets.ConnectionContext(c.UserID, c.ProviderID, f.field)})
				targets = append(targets, f.ct)
				stale = true
			}
		}
		if stale {
			touched = append(touched, c)
		}
	}
	rewrapped, err := a.Secrets.Rewrap(ctx, items)
	if err != nil {
		return res, err
	}
	for i, ct := range rewrapped {
		*targets[i] = ct
	}
	for i, c := range touched {
		c.KeyVersion = latest
		if err := a.Store.UpdateConnectionCiphertexts(ctx, c); err != nil {
			return res, err
		}
		activity.RecordHeartbeat(ctx, i+1)
	}
	res.Rewrapped = len(items)
	return res, nil
}

func (a *Rewrap) projectsPage(ctx context.Context, in workflows.RewrapPageInput, latest int) (workflows.RewrapPageResult, error) {
	rows, err := a.Store.ProjectsPage(ctx, in.AfterID, in.PageSize)
	if err != nil {
		return workflows.RewrapPageResult{}, err
	}
	res := workflows.RewrapPageResult{LastID: in.AfterID, Seen: len(rows)}
	var items []secrets.Sealed
	var touched []*store.Project
	for i := range rows {
		p := &rows[i]
		res.LastID = p.ID
		if p.ServerPasswordCiphertext != "" && secrets.KeyVersion(p.ServerPasswordCiphertext) < latest {
			items = append(items, secrets.Sealed{Ciphertext: p.ServerPasswordCiphertext, Context: secrets.ProjectContext(p.ID, fieldServerPassword)})
			touched = append(touched, p)
		}
	}
	rewrapped, err := a.Secrets.Rewrap(ctx, items)
	if err != nil {
		return res, err
	}
	for i, p := range touched {
		p.ServerPasswordCiphertext = rewrapped[i]
		if err := a.Store.SetProjectPassword(ctx, p.ID, p.ServerPasswordCiphertext); err != nil {
			return res, err
		}
		activity.RecordHeartbeat(ctx, i+1)
	}
	res.Rewrapped = len(items)
	return res, nil
}

// CountStale counts ciphertexts made with a key version older than the newest.
func (a *Rewrap) CountStale(ctx context.Context, pageSize int) (workflows.StaleResult, error) {
	info, err := a.Secrets.Info(ctx)
	if err != nil {
		return workflows.StaleResult{}, err
	}
	out := workflows.StaleResult{Latest: info.LatestVersion}
	for after := ""; ; {
		rows, err := a.Store.ConnectionsPage(ctx, after, pageSize)
		if err != nil {
			return out, err
		}
		for i := range rows {
			for _, f := range secretFields(&rows[i]) {
				if *f.ct != "" && secrets.KeyVersion(*f.ct) < info.LatestVersion {
					out.Stale++
				}
			}
			after = rows[i].ID
		}
		if len(rows) < pageSize {
			break
		}
		activity.RecordHeartbeat(ctx, after)
	}
	for after := ""; ; {
		rows, err := a.Store.ProjectsPage(ctx, after, pageSize)
		if err != nil {
			return out, err
		}
		for _, p := range rows {
			if p.ServerPasswordCiphertext != "" && secrets.KeyVersion(p.ServerPasswordCiphertext) < info.LatestVersion {
				out.Stale++
			}
			after = p.ID
		}
		if len(rows) < pageSize {
			break
		}
		activity.RecordHeartbeat(ctx, after)
	}
	return out, nil
}

// RetireOldVersions makes key versions below v stop decrypting, and records it.
func (a *Rewrap) RetireOldVersions(ctx context.Context, v int) error {
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
