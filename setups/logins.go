package setups

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/workflows"
)

// ErrNoLogin means the user has not started signing in to that provider.
var ErrNoLogin = errors.New("setups: no sign-in started for that provider")

// StartLogin starts the user's device login to providerID, replacing one still pending, and
// waits up to wait for the user code to be there.
func (s *Service) StartLogin(ctx context.Context, in workflows.LoginInput, wait time.Duration) (workflows.LoginStatus, error) {
	err := s.startForConnection(ctx, client.StartWorkflowOptions{
		ID:                       workflows.LoginWorkflowID(in.UserID, in.ProviderID),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
		// A login nobody finishes is over when its code expires; this only bounds a lost one.
		WorkflowExecutionTimeout: time.Hour,
	}, in.UserID, in.ProviderID, workflows.TypeOAuthLogin, in)
	if err != nil {
		return workflows.LoginStatus{}, fmt.Errorf("setups: unable to start signing in to %s: %w", in.ProviderID, err)
	}
	deadline := time.Now().Add(wait)
	for {
		st, err := s.LoginStatus(ctx, in.UserID, in.ProviderID)
		if err != nil || st.State != workflows.LoginStarting || time.Now().After(deadline) {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PushCredential hands the user's replaced credential for providerID to their running
// projects. A push still running for an older replacement is replaced by this one.
func (s *Service) PushCredential(ctx context.Context, userID, providerID string) error {
	err := s.startForConnection(ctx, client.StartWorkflowOptions{
		ID:                       workflows.PushWorkflowID(userID, providerID),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
	}, userID, providerID, workflows.TypeCredentialPush, workflows.ConnectionRef{UserID: userID, ProviderID: providerID})
	if err != nil {
		return fmt.Errorf("setups: unable to start handing the new %s credential to projects: %w", providerID, err)
	}
	return nil
}

// LoginStatus is where the user's latest login to providerID stands.
func (s *Service) LoginStatus(ctx context.Context, userID, providerID string) (workflows.LoginStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	v, err := s.Temporal.QueryWorkflow(ctx, workflows.LoginWorkflowID(userID, providerID), "", workflows.QueryLogin)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return workflows.LoginStatus{}, ErrNoLogin
	} else if err != nil {
		return workflows.LoginStatus{}, fmt.Errorf("setups: unable to read the sign-in to %s: %w", providerID, err)
	}
	var st workflows.LoginStatus
	if err := v.Get(&st); err != nil {
		return workflows.LoginStatus{}, err
	}
	if st.State == workflows.LoginWaiting && st.ExpiresAt != nil && time.Now().After(*st.ExpiresAt) {
		st.State = workflows.LoginExpired // the poll ends a moment later
	}
	return st, nil
}
