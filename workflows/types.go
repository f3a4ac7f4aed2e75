// Package workflows holds doce's Temporal workflows. Everything here is deterministic
// orchestration: no I/O, no clocks but workflow.Now, no secrets in inputs, results or state.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
)

// Activity type names, as registered by the worker and shown in the Temporal UI's timeline.
const (
	ActComposeUp              = "docker.composeUp"
	ActWaitHealthy            = "opencode.waitHealthy"
	ActSetProviderCredentials = "opencode.setProviderCredentials"
	ActSessionCreate          = "opencode.sessionCreate"
	ActSendInitialPrompt      = "opencode.sendInitialPrompt"
	ActRecordProgress         = "project.recordProgress"
)

// Non-retryable error types: retrying cannot fix these, a person has to.
const (
	ErrTypeProjectGone          = "ProjectGone"
	ErrTypeProviderNotConnected = "ProviderNotConnected"
	ErrTypeCredentialsRejected  = "CredentialsRejected"
	ErrTypeImageMissing         = "ImageMissing"
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

// Setup states, the values of DoceSetupState.
const (
	StateRunning   = "running"
	StateCompleted = "completed"
	StateFailed    = "failed"
)

// SetupInput starts ProjectSetup. It names rows; it never carries what they hold.
type SetupInput struct {
	ProjectID   string
	RequestedBy string
}

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
	Status    string // the project's status: setting-up, ready, failed
	Error     string
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
	State string         `json:"state"`
	Steps []StepProgress `json:"steps"`
}

// QueryProgress is the query name for Progress.
const QueryProgress = "progress"
