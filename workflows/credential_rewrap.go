package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// RewrapWorkflowID is the one id key rewraps run under: a second rotation during a rewrap
// joins the running one, which rewraps to the newest version anyway.
const RewrapWorkflowID = "credential-rewrap"

// Tables holding Transit ciphertext, in the order a rewrap visits them.
const (
	TableConnections = "provider_connections"
	TableProjects    = "projects"
	TablePool        = "pool_workspaces"
	TableForges      = "forge_connections"
)

var rewrapTables = []string{TableConnections, TableProjects, TablePool, TableForges}

// changeRewrapPool is the workflow.GetVersion change id of rewrapping the prebuilt
// workspaces' passwords: a run from before it went from projects to the stale count.
const changeRewrapPool = "rewrap-pool"

// changeRewrapForges is the change id of rewrapping forge tokens: a run from before it went
// from the prebuilt workspaces to the stale count.
const changeRewrapForges = "rewrap-forges"

// RewrapState is CredentialRewrap's input and its progress: where it is and what it did. A
// continued-as-new run starts from it.
type RewrapState struct {
	Table     string `json:"table"`
	AfterID   string `json:"afterId"`
	Seen      int    `json:"seen"`      // rows read
	Rewrapped int    `json:"rewrapped"` // ciphertexts rewrapped
	Passes    int    `json:"passes"`    // full passes done
	Retired   int    `json:"retired"`   // versions below this no longer decrypt (set at the end)
	PageSize  int    `json:"pageSize"`
}

// RewrapPageInput asks for one page of one table.
type RewrapPageInput struct {
	Table    string
	AfterID  string
	PageSize int
}

// RewrapPageResult says what a page did.
type RewrapPageResult struct {
	LastID    string
	Seen      int
	Rewrapped int
}

// StaleResult counts ciphertexts still made with an older key version than Latest.
type StaleResult struct {
	Latest int
	Stale  int
}

const (
	ActRewrapPage    = "credentials.rewrapPage"
	ActCountStale    = "credentials.countStale"
	ActRetireVersion = "credentials.retireOldVersions"
	// pagesPerRun bounds a run's history; the rewrap continues as new after that many pages.
	pagesPerRun = 100
)

// CredentialRewrap rewraps every stored ciphertext to the newest Transit key version, page by
// page inside Vault (plaintext never leaves it), checks none is left behind, then retires the
// older versions. It can be re-run at any time and resumes from its state after a crash.
func CredentialRewrap(ctx workflow.Context, st RewrapState) (RewrapState, error) {
	if st.PageSize <= 0 {
		st.PageSize = 200
	}
	if st.Table == "" {
		st.Table = rewrapTables[0]
	}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (RewrapState, error) { return st, nil }); err != nil {
		return st, err
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	for pages := 0; ; pages++ {
		if pages == pagesPerRun {
			return st, workflow.NewContinueAsNewError(ctx, CredentialRewrap, st)
		}
		var res RewrapPageResult
		err := workflow.ExecuteActivity(actx, ActRewrapPage, RewrapPageInput{Table: st.Table, AfterID: st.AfterID, PageSize: st.PageSize}).Get(ctx, &res)
		if err != nil {
			return st, err
		}
		st.Seen += res.Seen
		st.Rewrapped += res.Rewrapped
		st.AfterID = res.LastID
		if res.Seen == st.PageSize {
			continue
		}
		next := nextTable(st.Table)
		if next == TablePool && workflow.GetVersion(ctx, changeRewrapPool, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			next = ""
		}
		if next == TableForges && workflow.GetVersion(ctx, changeRewrapForges, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			next = ""
		}
		if next != "" {
			st.Table, st.AfterID = next, ""
			continue
		}
		// A full pass is done. Rows written while it ran may still hold an older version:
		// look, and pass again if so, before anything is retired.
		st.Passes++
		var stale StaleResult
		if err := workflow.ExecuteActivity(actx, ActCountStale, st.PageSize).Get(ctx, &stale); err != nil {
			return st, err
		}
		if stale.Stale > 0 {
			if st.Passes >= 5 {
				return st, temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("%d ciphertexts still use a key version older than %d after %d passes", stale.Stale, stale.Latest, st.Passes), "RewrapIncomplete", nil)
			}
			st.Table, st.AfterID = rewrapTables[0], ""
			continue
		}
		if err := workflow.ExecuteActivity(actx, ActRetireVersion, stale.Latest).Get(ctx, nil); err != nil {
			return st, err
		}
		st.Retired = stale.Latest
		return st, nil
	}
}

func nextTable(t string) string {
	for i, x := range rewrapTables {
		if x == t && i+1 < len(rewrapTables) {
			return rewrapTables[i+1]
		}
	}
	return ""
}
