package workflows

import (
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ConnectionRef names one user's connection to one provider.
type ConnectionRef struct {
	UserID     string
	ProviderID string
}

// LoginInput starts OAuthLogin. Enterprise is a GitHub Enterprise host the user named, or "".
type LoginInput struct {
	UserID     string
	ProviderID string
	Enterprise string `json:",omitempty"`
}

// LoginWorkflowID is the one login a user runs per provider at a time: starting another
// replaces a pending one.
func LoginWorkflowID(userID, providerID string) string {
	return "oauth-login:" + userID + ":" + providerID
}

// RefreshWorkflowID is the one refresher of a connection.
func RefreshWorkflowID(userID, providerID string) string {
	return "oauth-refresh:" + userID + ":" + providerID
}

// LoginStarted is a device login waiting for the user. SecretCiphertext is the device code,
// sealed by Vault Transit to this user and provider: history holds no usable code.
type LoginStarted struct {
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string `json:",omitempty"`
	Interval                time.Duration
	ExpiresAt               time.Time
	SecretCiphertext        string
}

// LoginWaitInput is what the polling activity takes.
type LoginWaitInput struct {
	Login   LoginInput
	Started LoginStarted
}

// TokenInfo describes a connection's stored token without its secrets.
type TokenInfo struct {
	// Active: an OAuth connection that is connected and holds a token.
	Active bool
	// ExpiresAt is when the access token expires; zero when it does not.
	ExpiresAt time.Time
	// SavedAt is when the token was stored.
	SavedAt time.Time
}

// RefreshStepInput asks for the token that expires at ExpiresAt to be refreshed. A token that
// no longer expires then was refreshed already, and is left alone.
type RefreshStepInput struct {
	Ref       ConnectionRef
	ExpiresAt time.Time
}

// Login states, as the settings page shows them.
const (
	LoginStarting  = "starting"
	LoginWaiting   = "waiting-for-user"
	LoginConnected = "connected"
	LoginDenied    = "denied"
	LoginExpired   = "expired"
	LoginFailed    = "failed"
)

// LoginStatus is what the login query returns.
type LoginStatus struct {
	State                   string     `json:"state"`
	UserCode                string     `json:"userCode,omitempty"`
	VerificationURI         string     `json:"verificationUri,omitempty"`
	VerificationURIComplete string     `json:"verificationUriComplete,omitempty"`
	ExpiresAt               *time.Time `json:"expiresAt,omitempty"`
	Error                   string     `json:"error,omitempty"`
	Enterprise              string     `json:"enterpriseUrl,omitempty"`
}

// QueryLogin is the query name for LoginStatus.
const QueryLogin = "login"

// OAuthLogin runs a device login: it asks the provider for a user code, shows it (query
// "login"), polls until the user finishes, and stores the tokens as the user's connection,
// sealed by Vault Transit. A worker restart resumes polling with the same code. When the token
// expires, OAuthRefresh is started to keep it fresh.
func OAuthLogin(ctx workflow.Context, in LoginInput) (LoginStatus, error) {
	status := LoginStatus{State: LoginStarting, Enterprise: in.Enterprise}
	if err := workflow.SetQueryHandler(ctx, QueryLogin, func() (LoginStatus, error) { return status, nil }); err != nil {
		return status, err
	}
	fail := func(state string, err error) (LoginStatus, error) {
		status.State, status.Error = state, errorMessage(err)
		if state == LoginFailed {
			return status, err
		}
		return status, nil // the user's answer, not a fault
	}
	sctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 5,
			NonRetryableErrorTypes: []string{ErrTypeBadInput}},
		Summary: "Ask the provider for a user code",
	})
	var st LoginStarted
	if err := workflow.ExecuteActivity(sctx, ActOAuthStart, in).Get(ctx, &st); err != nil {
		return fail(LoginFailed, err)
	}
	expires := st.ExpiresAt
	status = LoginStatus{State: LoginWaiting, UserCode: st.UserCode, VerificationURI: st.VerificationURI,
		VerificationURIComplete: st.VerificationURIComplete, ExpiresAt: &expires, Enterprise: in.Enterprise}

	// Polling lasts until the code expires; a retried attempt goes on with the same code.
	budget := max(st.ExpiresAt.Sub(workflow.Now(ctx)), time.Minute) + time.Minute
	wctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    budget,
		ScheduleToCloseTimeout: budget,
		HeartbeatTimeout:       15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{ErrTypeLoginDenied, ErrTypeLoginExpired, ErrTypeLoginRefused, ErrTypeBadInput}},
		Summary: "Wait for the user to finish signing in",
	})
	var tok TokenInfo
	if err := workflow.ExecuteActivity(wctx, ActOAuthWait, LoginWaitInput{Login: in, Started: st}).Get(ctx, &tok); err != nil {
		var ae *temporal.ApplicationError
		switch {
		case errors.As(err, &ae) && ae.Type() == ErrTypeLoginDenied:
			return fail(LoginDenied, err)
		case errors.As(err, &ae) && ae.Type() == ErrTypeLoginExpired, isTimeout(err):
			return fail(LoginExpired, err)
		}
		return fail(LoginFailed, err)
	}
	status = LoginStatus{State: LoginConnected, Enterprise: in.Enterprise}
	// Projects already on the provider (a second login, or one after the token expired) get
	// the new token now rather than at the next refresh.
	lctx := withConnectionReads(ctx)
	ref := ConnectionRef{UserID: in.UserID, ProviderID: in.ProviderID}
	pushToProjects(ctx, lctx, ref, tok)
	if tok.ExpiresAt.IsZero() {
		return status, nil
	}
	// The refresher outlives this login; one already running (a second login) carries on and
	// reads the new token when it wakes.
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            RefreshWorkflowID(in.UserID, in.ProviderID),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	})
	err := workflow.ExecuteChildWorkflow(cctx, OAuthRefresh, ref).
		GetChildWorkflowExecution().Get(ctx, nil)
	if err != nil && !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return status, err
	}
	return status, nil
}

// OAuthRefresh keeps one connection's token fresh: it sleeps until shortly before the access
// token expires, refreshes it (the new pair is stored before anything else, since providers
// rotate refresh tokens), hands it to every running project of the user that uses the
// provider, and continues as new. A refused refresh marks the connection expired and ends
// the workflow; disconnecting cancels it.
func OAuthRefresh(ctx workflow.Context, ref ConnectionRef) error {
	lctx := withConnectionReads(ctx)
	var tok TokenInfo
	if err := workflow.ExecuteLocalActivity(lctx, ActOAuthPlan, ref).Get(ctx, &tok); err != nil {
		return err
	}
	if !tok.Active || tok.ExpiresAt.IsZero() {
		return nil
	}
	if d := RefreshAt(tok).Sub(workflow.Now(ctx)); d > 0 {
		if err := workflow.Sleep(ctx, d); err != nil {
			return err // cancelled: the connection is being disconnected
		}
	}
	rctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    10 * time.Second, // a worker that died mid-refresh is noticed soon
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
			NonRetryableErrorTypes: []string{ErrTypeGrantRevoked}},
		Summary: "Refresh the token and store the new pair",
	})
	var fresh TokenInfo
	if err := workflow.ExecuteActivity(rctx, ActOAuthRefresh, RefreshStepInput{Ref: ref, ExpiresAt: tok.ExpiresAt}).Get(ctx, &fresh); err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) && ae.Type() == ErrTypeGrantRevoked {
			return nil // marked expired; the user logs in again
		}
		return err
	}
	if fresh.Active {
		pushToProjects(ctx, lctx, ref, fresh)
	}
	return workflow.NewContinueAsNewError(ctx, OAuthRefresh, ref)
}

// RefreshAt is when a token is refreshed: a quarter of its life before it expires, at most
// ten minutes before. OpenCode refreshes a token itself only once it has expired, so doce's
// refresh always comes first.
func RefreshAt(tok TokenInfo) time.Time {
	life := tok.ExpiresAt.Sub(tok.SavedAt)
	margin := min(max(life/4, 0), 10*time.Minute)
	return tok.ExpiresAt.Add(-margin)
}

// errorMessage is the message a person reads for err: the activity's own words.
func errorMessage(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	if isTimeout(err) {
		return "the sign-in code expired"
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var te *temporal.TimeoutError
	return errors.As(err, &te)
}
