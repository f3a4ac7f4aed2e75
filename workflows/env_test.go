// The workflow tests are an external package so that they can register the activities the
// worker registers, under its names and with their real signatures: a test that mocks an
// activity with a signature it no longer has fails, where a hand-written stand-in would have
// gone on matching the old one. They dot-import workflows, as the standard library's external
// tests do, to read like the package they test.
package workflows_test

import (
	"context"
	"reflect"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/doce-dev/doce/activities"
	"github.com/doce-dev/doce/worker"
)

// newTestEnv is newBareTestEnv with every project placed on testHost.
func newTestEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	env := newBareTestEnv(t)
	onTestHost(env)
	return env
}

// newBareTestEnv is a test environment with every workflow and activity registered by
// worker.Register. The activities keep their signatures but not their bodies (the structs
// have no store, Vault or Docker): each activity a test reaches is mocked with OnActivity, and
// one that is not fails the test.
func newBareTestEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	r := mockedActivities{env, t, map[string]reflect.Type{}}
	worker.Register(r, worker.Activities{
		Docker:       &activities.Docker{},
		OpenCode:     &activities.OpenCode{},
		Projects:     &activities.Projects{},
		Connections:  &activities.Connections{},
		Rewrap:       &activities.Rewrap{},
		OAuth:        &activities.OAuth{},
		Pool:         &activities.Pool{},
		Hosts:        &activities.Hosts{},
		Repositories: &activities.Repositories{},
	})
	// A local activity's arguments reach its mock as the workflow passed them, unchecked:
	// check them against the activity's parameters here.
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		ft := r.types[info.ActivityType.Name]
		if ft == nil {
			t.Errorf("local activity %s is not registered", info.ActivityType.Name)
			return
		}
		if len(args) != ft.NumIn()-1 {
			t.Errorf("local activity %s called with %d arguments, takes %d", info.ActivityType.Name, len(args), ft.NumIn()-1)
			return
		}
		for i, a := range args {
			if want := ft.In(i + 1); a == nil || !reflect.TypeOf(a).AssignableTo(want) {
				t.Errorf("local activity %s argument %d is %T, takes %s", info.ActivityType.Name, i+1, a, want)
			}
		}
	})
	return env
}

// mockedActivities registers each activity as a function of the same type whose body fails
// the test: only a mock may answer it.
type mockedActivities struct {
	*testsuite.TestWorkflowEnvironment
	t     *testing.T
	types map[string]reflect.Type // by activity name
}

func (r mockedActivities) RegisterActivityWithOptions(fn any, opts activity.RegisterOptions) {
	ft := reflect.TypeOf(fn)
	r.types[opts.Name] = ft
	unmocked := reflect.MakeFunc(ft, func([]reflect.Value) []reflect.Value {
		r.t.Errorf("activity %s ran without a mock", opts.Name)
		out := make([]reflect.Value, ft.NumOut())
		for i := range out {
			out[i] = reflect.Zero(ft.Out(i))
		}
		err := reflect.New(ft.Out(ft.NumOut() - 1)).Elem()
		err.Set(reflect.ValueOf(temporal.NewNonRetryableApplicationError("no mock for "+opts.Name, "Unmocked", nil)))
		out[len(out)-1] = err
		return out
	})
	r.TestWorkflowEnvironment.RegisterActivityWithOptions(unmocked.Interface(), opts)
}
