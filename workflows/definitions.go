package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Workflow types: the names each workflow is registered under and started by. They are in the
// histories of runs in flight, so they never change.
const (
	TypeProjectSetup         = "ProjectSetup"
	TypeProjectTeardown      = "ProjectTeardown"
	TypeProjectEnsureRunning = "ProjectEnsureRunning"
	TypeProjectStop          = "ProjectStop"
	TypeProjectStart         = "ProjectStart"
	TypeWorkspaceIdle        = "WorkspaceIdle"
	TypeWorkspacePool        = "WorkspacePool"
	TypeProviderDisconnect   = "ProviderDisconnect"
	TypeCredentialRewrap     = "CredentialRewrap"
	TypeCredentialPush       = "CredentialPush"
	TypeOAuthLogin           = "OAuthLogin"
	TypeOAuthRefresh         = "OAuthRefresh"
	TypeProjectPush          = "ProjectPush"
	TypeProjectPull          = "ProjectPull"
)

// Definitions is every workflow by type: the worker registers this table and the replay tests
// replay recorded histories against it, so a workflow is never in one and not the other.
var Definitions = map[string]any{
	TypeProjectSetup:         ProjectSetup,
	TypeProjectTeardown:      ProjectTeardown,
	TypeProjectEnsureRunning: ProjectEnsureRunning,
	TypeProjectStop:          ProjectStop,
	TypeProjectStart:         ProjectStart,
	TypeWorkspaceIdle:        WorkspaceIdle,
	TypeWorkspacePool:        WorkspacePool,
	TypeProviderDisconnect:   ProviderDisconnect,
	TypeCredentialRewrap:     CredentialRewrap,
	TypeCredentialPush:       CredentialPush,
	TypeOAuthLogin:           OAuthLogin,
	TypeOAuthRefresh:         OAuthRefresh,
	TypeProjectPush:          ProjectPush,
	TypeProjectPull:          ProjectPull,
}

// Register registers every workflow of Definitions on r, a worker or a replayer.
func Register(r worker.WorkflowRegistry) {
	for name, fn := range Definitions {
		r.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: name})
	}
}
