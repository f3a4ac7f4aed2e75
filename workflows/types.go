// Package workflows holds doce's Temporal workflows. Everything here is deterministic
// orchestration: no I/O, no clocks but workflow.Now, no secrets in inputs, results or state.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/status"
)

// Activity type names, as registered by the worker and shown in the Temporal UI's timeline.
const (
	ActComposeUp              = "docker.composeUp"
	ActWaitHealthy            = "opencode.waitHealthy"
	ActSetProviderCredentials = "opencode.setProviderCredentials"
	ActSessionCreate          = "opencode.sessionCreate"
	ActSendInitialPrompt      = "opencode.sendInitialPrompt"
	ActImportRepository       = "git.importRepository"
	ActRecordProgress         = "project.recordProgress"
	ActComposeDown            = "docker.composeDown"
	ActContainerState         = "docker.containerState"
	ActRemoveCredentials      = "opencode.removeProviderCredentials"
	ActMarkRevoked            = "connections.markRevoked"
	ActProjectsUsing          = "connections.projectsUsing"
	ActDeleteConnection       = "connections.delete"
	ActMarkDeleted            = "project.markDeleted"
	ActPushCredentials        = "opencode.pushProviderCredentials"
	ActOAuthStart             = "oauth.deviceStart"
	ActOAuthWait              = "oauth.deviceWait"
	ActOAuthPlan              = "oauth.refreshPlan"
	ActOAuthRefresh           = "oauth.refresh"
)

// Non-retryable error types: retrying cannot fix these, a person has to.
const (
	ErrTypeProjectGone          = "ProjectGone"
	ErrTypeProviderNotConnected = "ProviderNotConnected"
	ErrTypeCredentialsRejected  = "CredentialsRejected"
	ErrTypeImageMissing         = "ImageMissing"
	ErrTypeBadInput             = "BadInput"
	ErrTypeLoginDenied          = "LoginDenied"
	ErrTypeLoginExpired         = "LoginExpired"
	ErrTypeLoginRefused         = "LoginRefused"
	ErrTypeGrantRevoked         = "GrantRevoked"
	ErrTypeImportRefused        = "ImportRefused" // the repository, its ref or the token cannot be had as asked
)

// Search attributes doce keeps on its runs, so the Temporal UI and `temporal workflow list
// --query` can find them. They must be registered on the namespace (the worker does it at start).
var (
	SAProjectID  = temporal.NewSearchAttributeKeyKeyword("DoceProjectID")
	SAUserID     = temporal.NewSearchAttributeKeyKeyword("DoceUserID")
	SASetupStep  = temporal.NewSearchAttributeKeyKeyword("DoceSetupStep")
	SASetupState = temporal.NewSearchAttributeKeyKeyword("DoceSetupState")
	SAProviderID = temporal.NewSearchAttributeKeyKeyword("DoceProviderID")
)

// SearchAttributeKeys lists every key above, for registration.
var SearchAttributeKeys = []temporal.SearchAttributeKey{SAProjectID, SAUserID, SASetupStep, SASetupState, SAProviderID}

// Updates ProjectSetup takes while it waits for an operator. Their validators refuse them
// unless the setup is waiting, so a caller learns at once whether its retry or cancel was taken.
const (
	UpdateRetry  = "retry"  // resume from the failed step
	UpdateCancel = "cancel" // tear the workspace down and stop
)

// Signals of the same names did the same before the updates; runs still take them while
// waiting, for callers of an older doce during an upgrade. A signal sent while the setup was
// not waiting is dropped when it next waits (it used to retry the next failure unasked).
const (
	SignalRetry  = "retry"
	SignalCancel = "cancel"
)

// Error types of a refused retry or cancel update.
const (
	ErrTypeNotWaiting = "NotWaiting"
)

// DefaultOperatorWait is how long a failed setup waits for retry or cancel before giving up.
const DefaultOperatorWait = 7 * 24 * time.Hour

// SetupInput starts ProjectSetup. It names rows; it never carries what they hold.
type SetupInput struct {
	ProjectID   string
	RequestedBy string
	// OperatorWait overrides DefaultOperatorWait (tests use seconds).
	OperatorWait time.Duration `json:",omitempty"`
	// Prebuilt says the project claimed a prebuilt workspace: its first steps only check it.
	Prebuilt bool `json:",omitempty"`
	// Repository says the project is made from a git repository: the setup imports it into
	// the workspace after starting the container.
	Repository bool `json:",omitempty"`
}

// TeardownInput starts ProjectTeardown.
type TeardownInput struct {
	ProjectID   string
	RequestedBy string
}

// TeardownWorkflowID is the one workflow id a project's teardown runs under.
func TeardownWorkflowID(projectID string) string { return "project-teardown:" + projectID }

// SetupWorkflowID is the one workflow id a project's setup runs under, so starting it twice
// finds the running one instead of starting a second.
func SetupWorkflowID(projectID string) string { return "project-setup:" + projectID }

// StepInput is what every setup activity takes: the project to work on.
type StepInput struct {
	ProjectID string
}

// ComposeUpResult says where the workspace's OpenCode server listens.
type ComposeUpResult struct {
	ContainerName string
	HostPort      int
}

// SessionResult names the OpenCode session the setup opened.
type SessionResult struct {
	SessionID string
}

// ProgressUpdate is written to the project row as the setup moves.
type ProgressUpdate struct {
	ProjectID string
	Step      string
	Status    status.Project
	Error     string
	// Progress is the step table at this moment, so pages of finished setups need no query.
	Progress *Progress `json:",omitempty"`
}

// Step statuses in the progress table.
const (
	StepPending = "pending"
	StepRunning = "running"
	StepDone    = "done"
	StepFailed  = "failed"
)

// StepProgress is one row of the progress table.
type StepProgress struct {
	Name       string     `json:"name"`
	Title      string     `json:"title"`
	Status     string     `json:"status"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// Progress is what the progress query returns.
type Progress struct {
	State status.Setup `json:"state"`
	// Runs counts how often the setup was started from a failed step by an operator, plus one.
	Runs  int            `json:"runs"`
	Steps []StepProgress `json:"steps"`
}

// QueryProgress is the query name for Progress.
const QueryProgress = "progress"

// DisconnectInput starts ProviderDisconnect.
type DisconnectInput struct {
	UserID      string
	ProviderID  string
	RequestedBy string
}

// DisconnectWorkflowID is the one workflow id disconnecting a user's provider runs under.
func DisconnectWorkflowID(userID, providerID string) string {
	return "provider-disconnect:" + userID + ":" + providerID
}

// ProjectCredentialsInput names a project and the provider whose credential its OpenCode must
// be given again or forget.
type ProjectCredentialsInput struct {
	ProjectID  string
	ProviderID string
}
