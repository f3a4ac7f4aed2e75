package activities

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// slowCall is longer than heartbeatWhile's period: an activity that heartbeats through a call
// this slow records at least one heartbeat during it.
const slowCall = 2500 * time.Millisecond

func countHeartbeats(env *testsuite.TestActivityEnvironment) *atomic.Int32 {
	var n atomic.Int32
	env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) { n.Add(1) })
	return &n
}

// Pushing a credential waits on Docker, Vault and OpenCode; it heartbeats while it waits, so
// its heartbeat timeout (CredentialPush's 15 s) catches a dead worker, not a slow answer.
func TestPushProviderCredentialsHeartbeatsThroughASlowAnswer(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	if err := r.st.CreateConnection(r.ctx, &store.ProviderConnection{UserID: r.user.ID, ProviderID: "openai", AuthType: store.AuthAPI,
		APIKeyCiphertext: r.connField("openai", secrets.FieldAPIKey, "sk-new")}); err != nil {
		t.Fatal(err)
	}
	r.oc.beforeAuth = func(int) { time.Sleep(slowCall) }
	beats := countHeartbeats(r.env)

	if _, err := r.env.ExecuteActivity(r.acts.PushProviderCredentials, workflows.ProjectCredentialsInput{ProjectID: p.ID, ProviderID: "openai"}); err != nil {
		t.Fatal(err)
	}
	if r.oc.count("PUT /auth/{id}") != 1 || !strings.HasPrefix(r.oc.auths[0].Key, store.GatewayTokenPrefix) {
		t.Fatalf("handed over %+v", r.oc.auths)
	}
	if beats.Load() == 0 {
		t.Error("no heartbeat while OpenCode took its time")
	}
}

// A rewrap page asks Vault first; a Vault restart ridden out there must not look like a dead
// worker.
func TestRewrapPageHeartbeatsThroughASlowVault(t *testing.T) {
	t.Parallel()
	cipher := newFakeCipher()
	cipher.slow = slowCall
	rw := &Rewrap{Store: openStore(t), Secrets: cipher}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(rw)
	beats := countHeartbeats(env)

	if _, err := env.ExecuteActivity(rw.RewrapPage, workflows.RewrapPageInput{Table: workflows.TableConnections, PageSize: 10}); err != nil {
		t.Fatal(err)
	}
	if beats.Load() == 0 {
		t.Error("no heartbeat while Vault took its time")
	}
}
