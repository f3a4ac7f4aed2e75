package activities

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/workflows"
)

// A short step run locally by the worker of another host refuses before touching the
// workspace, so the workflow runs it on the project's host; run locally on the project's own
// host, or through the host's queue, it does its work.
func TestLocalStepsRefuseAProjectOnAnotherHost(t *testing.T) {
	r := newRig(t)
	r.acts.Host = "a"
	p := r.project(t, "openai", "gpt-5")
	if _, err := r.st.DB.NewUpdate().Table("projects").Set("host = 'b'").Where("id = ?", p.ID).Exec(r.ctx); err != nil {
		t.Fatal(err)
	}
	in := workflows.StepInput{ProjectID: p.ID}
	_, err := r.env.ExecuteLocalActivity(r.acts.SessionCreate, in)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeNotThisHost {
		t.Fatalf("a local run on host a for a project on b: %v, want %s", err, workflows.ErrTypeNotThisHost)
	}
	if n := r.oc.count("POST /session"); n != 0 {
		t.Fatalf("the refused step reached OpenCode %d times", n)
	}
	if _, err := r.env.ExecuteActivity(r.acts.SessionCreate, in); err != nil {
		t.Fatalf("through the host's queue: %v", err)
	}
	r.acts.Host = "b"
	if _, err := r.env.ExecuteLocalActivity(r.acts.SendInitialPrompt, in); err != nil {
		t.Fatalf("a local run on the project's own host: %v", err)
	}
	if n := r.oc.count("POST /session"); n != 1 {
		t.Errorf("POST /session made %d times, want 1", n)
	}
}
