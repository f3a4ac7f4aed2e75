// Package status is doce's one vocabulary of states: a project's, as its owner sees it and the
// database stores it, and a setup run's, as operators find it in Temporal's DoceSetupState
// search attribute. The web tier, the store and the workflows all use these names; the strings
// are stored and returned by the API, so they never change even where a name was chosen later.
package status

// Project is a project's status (projects.status, the API's "status").
type Project string

const (
	Pending   Project = "pending"    // created; its setup has not started
	SettingUp Project = "setting-up" // its setup runs
	Ready     Project = "ready"      // its workspace is up and has the first prompt
	// SetupFailed: a setup step failed after its retries; the setup waits for its owner or an
	// operator to retry or cancel (and, after DOCE_OPERATOR_WAIT, gives up: a retry then starts
	// it again).
	SetupFailed Project = "failed"
	Cancelled   Project = "cancelled" // a failed setup was cancelled; its workspace is removed
	Deleting    Project = "deleting"  // its teardown runs
	Deleted     Project = "deleted"   // gone; kept only as a row for the audit trail

	// A ready project's workspace can be stopped (by its owner or when idle) and started again:
	// ready → stopping → stopped → starting → ready.
	Stopping Project = "stopping"
	Stopped  Project = "stopped"
	Starting Project = "starting"
)

// Live is every status of a project that is not being deleted or gone.
var Live = []Project{Pending, SettingUp, Ready, SetupFailed, Cancelled, Stopping, Stopped, Starting}

// Setup is the state of a ProjectSetup run (the DoceSetupState search attribute).
type Setup string

const (
	SetupRunning   Setup = "running"
	SetupWaiting   Setup = "waiting-for-operator" // a step failed; the run waits for a retry or cancel
	SetupCompleted Setup = "completed"
	SetupCancelled Setup = "cancelled"
	SetupGaveUp    Setup = "failed" // nobody retried or cancelled within the operator wait
)
