package workflows_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	. "github.com/doce-dev/doce/workflows"
)

var loginIn = LoginInput{UserID: "u1", ProviderID: "openai"}

func started(env *testsuite.TestWorkflowEnvironment) LoginStarted {
	return LoginStarted{UserCode: "ABCD-EFGH", VerificationURI: "https://auth.example/device", Interval: time.Second,
		ExpiresAt: env.Now().UTC().Add(10 * time.Minute), SecretCiphertext: "vault:v1:sealed"}
}

func TestOAuthLoginConnectsAndStartsTheRefresher(t *testing.T) {
	env := newTestEnv(t)
	st := started(env)
	env.OnActivity(ActOAuthStart, mock.Anything, loginIn).Return(st, nil)
	var seen LoginStatus
	env.OnActivity(ActOAuthWait, mock.Anything, LoginWaitInput{Login: loginIn, Started: st}).Run(func(mock.Arguments) {
		// The page shows the code while the poll runs.
		v, err := env.QueryWorkflow(QueryLogin)
		if err == nil {
			err = v.Get(&seen)
		}
		if err != nil {
			t.Errorf("query: %v", err)
		}
	}).Return(TokenInfo{Active: true, ExpiresAt: env.Now().Add(time.Hour), SavedAt: env.Now()}, nil)
	env.OnActivity(ActProjectsUsing, mock.Anything, ConnectionRef{UserID: "u1", ProviderID: "openai"}).Return([]string{"p1"}, nil)
	var pushed []string
	env.OnActivity(ActPushCredentials, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		pushed = append(pushed, args.Get(1).(ProjectCredentialsInput).ProjectID)
	}).Return(nil)
	var refresher string
	env.OnWorkflow("OAuthRefresh", mock.Anything, ConnectionRef{UserID: "u1", ProviderID: "openai"}).Run(func(args mock.Arguments) {
		refresher = workflow.GetInfo(args.Get(0).(workflow.Context)).WorkflowExecution.ID
	}).Return(nil)

	env.ExecuteWorkflow(OAuthLogin, loginIn)
	var out LoginStatus
	if err := env.GetWorkflowResult(&out); err != nil || out.State != LoginConnected {
		t.Fatalf("login: %+v, %v", out, err)
	}
	if seen.State != LoginWaiting || seen.UserCode != "ABCD-EFGH" || seen.VerificationURI == "" || seen.ExpiresAt == nil {
		t.Fatalf("while waiting the query showed %+v", seen)
	}
	if refresher != RefreshWorkflowID("u1", "openai") {
		t.Fatalf("refresher started as %q", refresher)
	}
	if len(pushed) != 1 || pushed[0] != "p1" {
		t.Fatalf("the new token went to %v, want the project already on the provider", pushed)
	}
}

func TestOAuthLoginWithoutExpiryStartsNoRefresher(t *testing.T) {
	env := newTestEnv(t)
	st := started(env)
	env.OnActivity(ActOAuthStart, mock.Anything, loginIn).Return(st, nil)
	env.OnActivity(ActOAuthWait, mock.Anything, mock.Anything).Return(TokenInfo{Active: true}, nil)
	env.OnActivity(ActProjectsUsing, mock.Anything, mock.Anything).Return([]string(nil), nil)
	env.ExecuteWorkflow(OAuthLogin, loginIn)
	var out LoginStatus
	if err := env.GetWorkflowResult(&out); err != nil || out.State != LoginConnected {
		t.Fatalf("login: %+v, %v", out, err)
	}
	// An unexpected child start would fail the run: OAuthRefresh has no mock here.
}

func TestOAuthLoginEndsDeniedOrExpired(t *testing.T) {
	for _, tc := range []struct {
		errType, state string
	}{{ErrTypeLoginDenied, LoginDenied}, {ErrTypeLoginExpired, LoginExpired}} {
		t.Run(tc.state, func(t *testing.T) {
			env := newTestEnv(t)
			env.OnActivity(ActOAuthStart, mock.Anything, loginIn).Return(started(env), nil)
			calls := 0
			env.OnActivity(ActOAuthWait, mock.Anything, mock.Anything).Run(func(mock.Arguments) { calls++ }).
				Return(TokenInfo{}, temporal.NewNonRetryableApplicationError("the user said no", tc.errType, nil))
			env.ExecuteWorkflow(OAuthLogin, loginIn)
			var out LoginStatus
			if err := env.GetWorkflowResult(&out); err != nil {
				t.Fatalf("a user's answer is not a workflow failure: %v", err)
			}
			if out.State != tc.state || out.Error != "the user said no" || calls != 1 {
				t.Fatalf("got %+v after %d polls", out, calls)
			}
		})
	}
}

func TestOAuthLoginRetriesAPollThatBroke(t *testing.T) {
	env := newTestEnv(t)
	env.OnActivity(ActOAuthStart, mock.Anything, loginIn).Return(started(env), nil)
	env.OnActivity(ActOAuthWait, mock.Anything, mock.Anything).Return(TokenInfo{}, errors.New("connection reset")).Once()
	env.OnActivity(ActOAuthWait, mock.Anything, mock.Anything).Return(TokenInfo{Active: true}, nil).Once()
	env.OnActivity(ActProjectsUsing, mock.Anything, mock.Anything).Return([]string(nil), nil)
	env.ExecuteWorkflow(OAuthLogin, loginIn)
	var out LoginStatus
	if err := env.GetWorkflowResult(&out); err != nil || out.State != LoginConnected {
		t.Fatalf("login: %+v, %v", out, err)
	}
}

func TestOAuthRefreshSleepsRefreshesPushesAndContinues(t *testing.T) {
	env := newTestEnv(t)
	ref := ConnectionRef{UserID: "u1", ProviderID: "openai"}
	start := env.Now().UTC()
	tok := TokenInfo{Active: true, SavedAt: start, ExpiresAt: start.Add(time.Hour)}
	env.OnActivity(ActOAuthPlan, mock.Anything, ref).Return(tok, nil)
	var refreshedAt time.Time
	env.OnActivity(ActOAuthRefresh, mock.Anything, RefreshStepInput{Ref: ref, ExpiresAt: tok.ExpiresAt}).Run(func(mock.Arguments) {
		refreshedAt = env.Now()
	}).Return(TokenInfo{Active: true, SavedAt: start.Add(50 * time.Minute), ExpiresAt: start.Add(110 * time.Minute)}, nil)
	env.OnActivity(ActProjectsUsing, mock.Anything, ref).Return([]string{"p1", "p2"}, nil)
	var pushed []string
	env.OnActivity(ActPushCredentials, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		pushed = append(pushed, args.Get(1).(ProjectCredentialsInput).ProjectID)
	}).Return(nil)

	env.ExecuteWorkflow(OAuthRefresh, ref)
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	if want := start.Add(50 * time.Minute); refreshedAt.Sub(want).Abs() > time.Second {
		t.Fatalf("refreshed at +%s, want +50m (10 minutes before expiry)", refreshedAt.Sub(start))
	}
	if len(pushed) != 2 {
		t.Fatalf("pushed to %v, want both projects", pushed)
	}
}

func TestOAuthRefreshStopsWhenTheGrantIsRevoked(t *testing.T) {
	env := newTestEnv(t)
	ref := ConnectionRef{UserID: "u1", ProviderID: "openai"}
	env.OnActivity(ActOAuthPlan, mock.Anything, ref).Return(TokenInfo{Active: true, SavedAt: env.Now(), ExpiresAt: env.Now().Add(time.Minute)}, nil)
	calls := 0
	env.OnActivity(ActOAuthRefresh, mock.Anything, mock.Anything).Run(func(mock.Arguments) { calls++ }).
		Return(TokenInfo{}, temporal.NewNonRetryableApplicationError("log in again", ErrTypeGrantRevoked, nil))
	env.ExecuteWorkflow(OAuthRefresh, ref)
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil || calls != 1 {
		t.Fatalf("completed=%v err=%v calls=%d", env.IsWorkflowCompleted(), env.GetWorkflowError(), calls)
	}
}

func TestOAuthRefreshEndsForATokenThatNeverExpires(t *testing.T) {
	env := newTestEnv(t)
	env.OnActivity(ActOAuthPlan, mock.Anything, mock.Anything).Return(TokenInfo{Active: true, SavedAt: env.Now()}, nil)
	env.ExecuteWorkflow(OAuthRefresh, ConnectionRef{UserID: "u1", ProviderID: "github-copilot"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
}

func TestOAuthRefreshIsCancelledWhileItSleeps(t *testing.T) {
	env := newTestEnv(t)
	env.OnActivity(ActOAuthPlan, mock.Anything, mock.Anything).Return(TokenInfo{Active: true, SavedAt: env.Now(), ExpiresAt: env.Now().Add(time.Hour)}, nil)
	env.RegisterDelayedCallback(env.CancelWorkflow, 10*time.Minute)
	env.ExecuteWorkflow(OAuthRefresh, ConnectionRef{UserID: "u1", ProviderID: "openai"})
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("want cancelled, got %v", err)
	}
}

func TestRefreshAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ life, before time.Duration }{
		{time.Hour, 10 * time.Minute}, // capped
		{20 * time.Second, 5 * time.Second},
		{8 * time.Hour, 10 * time.Minute},
	} {
		got := RefreshAt(TokenInfo{SavedAt: t0, ExpiresAt: t0.Add(tc.life)})
		if want := t0.Add(tc.life - tc.before); !got.Equal(want) {
			t.Errorf("life %s: refresh at %s, want %s", tc.life, got, want)
		}
	}
}
