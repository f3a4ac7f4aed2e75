// Package worker builds doce's Temporal worker: which workflows and activities it runs, under
// which names and options.
package worker

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/doce-dev/doce/activities"
	"github.com/doce-dev/doce/workflows"
)

// Activities are the activity structs the worker runs, with their dependencies.
type Activities struct {
	Docker      *activities.Docker
	OpenCode    *activities.OpenCode
	Projects    *activities.Projects
	Connections *activities.Connections
	Rewrap      *activities.Rewrap
	OAuth       *activities.OAuth
	Pool        *activities.Pool
	Hosts       *activities.Hosts
	// Repositories imports the repository a project is made from and pushes its work back (a
	// host's steps: they reach into the workspace), and opens pull requests.
	Repositories *activities.Repositories
}

// options are every worker's: Stop takes this long at most, running activities get to finish
// their call.
var options = sdkworker.Options{WorkerStopTimeout: 30 * time.Second}

// New returns a worker on the shared taskQueue with every doce workflow and activity
// registered. It does not start it. The Docker and OpenCode activities are there for runs
// recorded before hosts, which scheduled them on the shared queue; runs since schedule them on
// the project's host's queue (NewHost).
func New(c client.Client, taskQueue string, acts Activities) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, options)
	Register(w, acts)
	return w
}

// NewHost returns a worker on a Docker host's own task queue with the activities that drive
// its engine and the OpenCode servers it runs. It does not start it.
func NewHost(c client.Client, hostQueue string, acts Activities) sdkworker.Worker {
	w := sdkworker.New(c, hostQueue, options)
	RegisterHost(w, acts)
	return w
}

// Register adds every workflow and activity to r under the names the workflows use.
func Register(r sdkworker.Registry, acts Activities) {
	workflows.Register(r)
	RegisterHost(r, acts)
	reg := func(fn any, name string) { r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name}) }
	reg(acts.Projects.RecordProgress, workflows.ActRecordProgress)
	reg(acts.Projects.MarkDeleted, workflows.ActMarkDeleted)
	reg(acts.Connections.MarkRevoked, workflows.ActMarkRevoked)
	reg(acts.Connections.ProjectsUsing, workflows.ActProjectsUsing)
	reg(acts.Connections.Delete, workflows.ActDeleteConnection)
	reg(acts.Rewrap.RewrapPage, workflows.ActRewrapPage)
	reg(acts.Rewrap.CountStale, workflows.ActCountStale)
	reg(acts.Rewrap.RetireOldVersions, workflows.ActRetireVersion)
	reg(acts.OAuth.DeviceStart, workflows.ActOAuthStart)
	reg(acts.OAuth.DeviceWait, workflows.ActOAuthWait)
	reg(acts.OAuth.RefreshPlan, workflows.ActOAuthPlan)
	reg(acts.OAuth.Refresh, workflows.ActOAuthRefresh)
	reg(acts.Projects.Transition, workflows.ActTransition)
	reg(acts.Projects.WatchIdle, workflows.ActWatchIdle)
	reg(acts.Hosts.Place, workflows.ActPlaceProject)
	reg(acts.Hosts.ProjectHost, workflows.ActProjectHost)
	reg(acts.Hosts.ProjectHosts, workflows.ActProjectHosts)
	reg(acts.Repositories.OpenPullRequest, workflows.ActOpenPullRequest)
	reg(acts.Repositories.RecordPush, workflows.ActRecordPush)
	reg(acts.Repositories.RecordPull, workflows.ActRecordPull)
}

// RegisterHost adds the activities that run on a Docker host: its containers, the OpenCode
// servers in them, its pooled workspaces.
func RegisterHost(r sdkworker.ActivityRegistry, acts Activities) {
	reg := func(fn any, name string) { r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name}) }
	reg(acts.Docker.ComposeUp, workflows.ActComposeUp)
	reg(acts.OpenCode.WaitHealthy, workflows.ActWaitHealthy)
	reg(acts.OpenCode.SetProviderCredentials, workflows.ActSetProviderCredentials)
	reg(acts.OpenCode.SessionCreate, workflows.ActSessionCreate)
	reg(acts.OpenCode.SendInitialPrompt, workflows.ActSendInitialPrompt)
	reg(acts.Repositories.Import, workflows.ActImportRepository)
	reg(acts.Repositories.PushWork, workflows.ActPushWork)
	reg(acts.Repositories.PullWork, workflows.ActPullWork)
	reg(acts.Docker.ComposeDown, workflows.ActComposeDown)
	reg(acts.Docker.ContainerState, workflows.ActContainerState)
	reg(acts.OpenCode.RemoveProviderCredentials, workflows.ActRemoveCredentials)
	reg(acts.OpenCode.PushProviderCredentials, workflows.ActPushCredentials)
	reg(acts.Docker.Stop, workflows.ActStopWorkspace)
	reg(acts.OpenCode.IdleCheck, workflows.ActIdleCheck)
	reg(acts.Pool.Plan, workflows.ActPoolPlan)
	reg(acts.Pool.Create, workflows.ActPoolCreate)
	reg(acts.Pool.Remove, workflows.ActPoolRemove)
}

// EnsureSearchAttributes registers doce's custom search attributes on the namespace when
// missing, so workflows can set them and the Temporal UI can filter on them.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("worker: unable to list search attributes: %w", err)
	}
	missing := map[string]enums.IndexedValueType{}
	for _, k := range workflows.SearchAttributeKeys {
		if _, ok := have.GetCustomAttributes()[k.GetName()]; !ok {
			missing[k.GetName()] = k.GetValueType()
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	if err != nil {
		return fmt.Errorf("worker: unable to add search attributes: %w", err)
	}
	return nil
}
