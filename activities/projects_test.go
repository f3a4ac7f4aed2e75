package activities

import (
	"testing"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// The workflows move projects by status name without importing the store: the names must agree.
func TestWorkflowStatusesAreTheStores(t *testing.T) {
	for wf, st := range map[string]string{
		workflows.ProjectReady:    store.ProjectReady,
		workflows.ProjectStopping: store.ProjectStopping,
		workflows.ProjectStopped:  store.ProjectStopped,
		workflows.ProjectStarting: store.ProjectStarting,
	} {
		if wf != st {
			t.Errorf("workflows says %q, store says %q", wf, st)
		}
	}
}
