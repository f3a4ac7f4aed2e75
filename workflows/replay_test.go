package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays histories of real runs (recorded by the e2e tests with
// DOCE_RECORD_HISTORY=workflows/testdata) against today's workflow code. A change that would
// break runs already in flight fails here; guard such a change with workflow.GetVersion.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories in testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(ProjectSetup, workflow.RegisterOptions{Name: "ProjectSetup"})
			r.RegisterWorkflowWithOptions(ProjectTeardown, workflow.RegisterOptions{Name: "ProjectTeardown"})
			r.RegisterWorkflowWithOptions(ProjectEnsureRunning, workflow.RegisterOptions{Name: "ProjectEnsureRunning"})
			r.RegisterWorkflowWithOptions(ProviderDisconnect, workflow.RegisterOptions{Name: "ProviderDisconnect"})
			r.RegisterWorkflowWithOptions(CredentialRewrap, workflow.RegisterOptions{Name: "CredentialRewrap"})
			r.RegisterWorkflowWithOptions(OAuthLogin, workflow.RegisterOptions{Name: "OAuthLogin"})
			r.RegisterWorkflowWithOptions(OAuthRefresh, workflow.RegisterOptions{Name: "OAuthRefresh"})
			r.RegisterWorkflowWithOptions(CredentialPush, workflow.RegisterOptions{Name: "CredentialPush"})
			r.RegisterWorkflowWithOptions(ProjectStop, workflow.RegisterOptions{Name: "ProjectStop"})
			r.RegisterWorkflowWithOptions(ProjectStart, workflow.RegisterOptions{Name: "ProjectStart"})
			r.RegisterWorkflowWithOptions(WorkspaceIdle, workflow.RegisterOptions{Name: "WorkspaceIdle"})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
