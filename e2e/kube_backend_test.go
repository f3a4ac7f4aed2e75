package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/doce-dev/doce/workspace"
)

// kubeBackendEnv is the test cluster, when there is one: DOCE_TEST_KUBECONFIG and the rest, set by
// whoever started it.
type kubeBackendEnv struct {
	Kubeconfig, Namespace, StorageClass string
	// HostIP is this machine as the cluster's pods reach it: where the LLM gateway listens.
	HostIP string
	// ChownVolume: the cluster's volumes ignore fsGroup (DOCE_KUBE_CHOWN_VOLUME).
	ChownVolume bool
	client      *kubernetes.Clientset
	rest        *rest.Config
}

// requireKubeBackend returns the test cluster, or skips the test when there is none.
func requireKubeBackend(t testing.TB) kubeBackendEnv {
	t.Helper()
	k := kubeBackendEnv{
		Kubeconfig:   os.Getenv("DOCE_TEST_KUBECONFIG"),
		Namespace:    os.Getenv("DOCE_TEST_KUBE_NAMESPACE"),
		StorageClass: os.Getenv("DOCE_TEST_KUBE_STORAGE_CLASS"),
		HostIP:       os.Getenv("DOCE_TEST_KUBE_HOST_IP"),
		ChownVolume:  os.Getenv("DOCE_TEST_KUBE_CHOWN_VOLUME") == "true",
	}
	if k.Kubeconfig == "" || k.HostIP == "" {
		t.Skip("needs a Kubernetes cluster: set DOCE_TEST_KUBECONFIG, DOCE_TEST_KUBE_HOST_IP and DOCE_TEST_KUBE_NAMESPACE (make test does, as root)")
	}
	if k.Namespace == "" || net.ParseIP(k.HostIP) == nil {
		t.Fatal("DOCE_TEST_KUBECONFIG is set but DOCE_TEST_KUBE_NAMESPACE is not, or DOCE_TEST_KUBE_HOST_IP is no IP address")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if k.client, err = kubernetes.NewForConfig(rc); err != nil {
		t.Fatal(err)
	}
	k.rest = rc
	return k
}

// exec runs cmd in the project's workspace pod as the agent and returns its output.
func (k kubeBackendEnv) exec(t *testing.T, projectID string, cmd ...string) string {
	t.Helper()
	req := k.client.CoreV1().RESTClient().Post().Namespace(k.Namespace).Resource("pods").Name("doce-"+projectID).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{Container: "opencode", Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(k.rest, "POST", req.URL())
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errb}); err != nil {
		t.Fatalf("exec %v: %v: %s", cmd, err, errb.String())
	}
	return out.String()
}

// objects counts what the cluster holds labelled with the project, by kind.
func (k kubeBackendEnv) objects(t *testing.T, projectID string) map[string]int {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: workspace.LabelProject + "=" + projectID}
	n := map[string]int{}
	pods, err := k.client.CoreV1().Pods(k.Namespace).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			n["pod"]++
		}
	}
	pvcs, err := k.client.CoreV1().PersistentVolumeClaims(k.Namespace).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	n["claim"] = len(pvcs.Items)
	secs, err := k.client.CoreV1().Secrets(k.Namespace).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	n["secret"] = len(secs.Items)
	nps, err := k.client.NetworkingV1().NetworkPolicies(k.Namespace).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	n["policy"] = len(nps.Items)
	return n
}

// TestKubernetesWorkspace runs a project on the Kubernetes backend: setup to ready with the
// mock LLM answering the prompt and a follow-up, the ops page cordoning the node, the egress
// probes, the preview, the files read through OpenCode and exported through the API
// server's exec, a stop that deletes the pod and keeps the files, a start, and a teardown that
// leaves nothing labelled with the project.
func TestKubernetesWorkspace(t *testing.T) {
	stack := requireStack(t)
	kube := requireKubeBackend(t)
	// Stand-ins for the internet, on this machine: the proxy may dial the pods' gateway at
	// all (DOCE_WORKSPACE_PRIVATE_HOSTS); whether a project may is its egress mode's to say.
	allowed := "http://" + net.JoinHostPort(kube.HostIP, listenOn(t, kube.HostIP, "the allowed destination")) + "/"
	unserved := "http://" + net.JoinHostPort(kube.HostIP, listenOn(t, kube.HostIP, "a host service")) + "/"
	d := kube.startDoce(t, stack, "DOCE_WORKSPACE_PRIVATE_HOSTS="+kube.HostIP)
	doce, hc, llm, proxy := d.doce, d.hc, d.llm, d.proxy
	const prompt = "a project on kubernetes"
	p := createProject(t, hc, doce, prompt)
	t.Cleanup(func() { _ = kubeDown(kube, p.ID) })
	began := time.Now()
	waitStatus(t, hc, doce, p.ID, "ready", 5*time.Minute)
	t.Logf("setup on Kubernetes took %s to ready", time.Since(began).Round(10*time.Millisecond))
	// The prompt went through the gateway to the mock.
	waitFor(t, "the prompt reaches the mock LLM", time.Minute, func() (bool, error) {
		return llm.requestsWith(prompt) != "", fmt.Errorf("%d requests, none with the prompt", len(llm.requests()))
	})
	// The conversation: the answer streams back from the pod, and a follow-up goes out again
	// through the gateway.
	waitAnswer(t, hc, doce.URL, p.ID, "Hello from the mock.")
	send(t, hc, doce.URL, p.ID, "A follow-up on kubernetes.")
	waitFor(t, "the follow-up reaches the mock LLM", time.Minute, func() (bool, error) {
		return llm.requestsWith("A follow-up on kubernetes.") != "", fmt.Errorf("%d requests, none with the follow-up", len(llm.requests()))
	})
	if n := kube.objects(t, p.ID); n["pod"] != 1 || n["claim"] != 1 || n["secret"] != 1 || n["policy"] != 1 {
		t.Fatalf("objects of the ready project: %v, want one of each", n)
	}

	kube.checkCordon(t, hc, doce)

	// Files: one the agent's side writes, read back through OpenCode and in the export.
	kube.exec(t, p.ID, "sh", "-c", "echo kept across a stop > /workspace/marker.txt")
	// OpenCode's first request after a start can outlast the files API's 20 s on a loaded
	// machine (the page says to try again): a few tries are allowed.
	readMarker := func() {
		t.Helper()
		began := time.Now()
		waitFor(t, "marker.txt through OpenCode", 2*time.Minute, func() (bool, error) {
			status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+p.ID+"/files/content?path=marker.txt", nil)
			var v struct{ File struct{ Content string } }
			json.Unmarshal(body, &v)
			if status == http.StatusServiceUnavailable {
				return false, fmt.Errorf("%d %.300s", status, body)
			}
			if status != http.StatusOK || strings.TrimSpace(v.File.Content) != "kept across a stop" {
				t.Fatalf("marker.txt through OpenCode: %d %.300s", status, body)
			}
			return true, nil
		})
		t.Logf("marker.txt read back in %s", time.Since(began).Round(10*time.Millisecond))
	}
	readMarker()
	status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+p.ID+"/export", nil)
	if status != http.StatusOK {
		t.Fatalf("export: %d %.300s", status, body)
	}
	names := tarGzNames(t, body)
	for _, want := range []string{"marker.txt", "AGENTS.md", "opencode.json"} {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, "/"+want) }) {
			t.Errorf("the export has no %s: %v", want, names)
		}
	}

	kube.checkEgress(t, hc, doce, p.ID, proxy, allowed, unserved)

	// The preview: an app on the pod's preview port, through doce's preview origin.
	kube.exec(t, p.ID, "sh", "-c", "mkdir -p /workspace/site && echo '<h1>preview on kubernetes</h1>' > /workspace/site/index.html && "+
		"(setsid python3 -m http.server "+strconv.Itoa(workspace.AppPort)+" -d /workspace/site >/dev/null 2>&1 &)")
	cookie := previewCookieFor(t, doce, previewLink(t, hc, doce, p.ID))
	waitFor(t, "the preview through doce", time.Minute, func() (bool, error) {
		status, body := previewGet(t, doce, p.ID, "/", cookie)
		return status == http.StatusOK && strings.Contains(body, "preview on kubernetes"), fmt.Errorf("%d %.200s", status, body)
	})

	// Stop deletes the pod and keeps the claim; start makes the pod again on the same files.
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/projects/"+p.ID+"/stop", nil)
	if status != http.StatusAccepted {
		t.Fatalf("stop: %d %s", status, body)
	}
	waitStatus(t, hc, doce, p.ID, "stopped", 2*time.Minute)
	waitFor(t, "the pod gone, the claim kept", time.Minute, func() (bool, error) {
		n := kube.objects(t, p.ID)
		return n["pod"] == 0 && n["claim"] == 1, fmt.Errorf("%v", n)
	})
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/projects/"+p.ID+"/start", nil)
	if status != http.StatusAccepted {
		t.Fatalf("start: %d %s", status, body)
	}
	waitStatus(t, hc, doce, p.ID, "ready", 5*time.Minute)
	readMarker()

	// Teardown leaves nothing labelled with the project.
	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/projects/"+p.ID, nil); status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", status, body)
	}
	waitFor(t, "nothing left of the deleted project", 2*time.Minute, func() (bool, error) {
		n := kube.objects(t, p.ID)
		return n["pod"]+n["claim"]+n["secret"]+n["policy"] == 0, fmt.Errorf("%v", n)
	})
}

// kubeDoce is a doce on the Kubernetes backend, signed in as its admin with the mock LLM
// connected.
type kubeDoce struct {
	doce  *doceProcess
	hc    *recordingClient
	llm   *mockLLM
	proxy string // where the worker's egress proxy listens
}

func (k kubeBackendEnv) startDoce(t *testing.T, stack stackEnv, extra ...string) kubeDoce {
	t.Helper()
	// The mock stands where the gateway, on this machine, reaches it (the outbound policy lets
	// it dial the Docker bridge's gateway); workspaces reach only the gateway.
	llm := startMockLLM(t, hostGatewayIP(t))
	env, proxy := k.doceEnv(t, stack)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-kube-%d", time.Now().UnixNano()), append(env, extra...)...)
	hc := newClient(t)
	resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first-run setup: %v", err)
	}
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections",
		map[string]any{"providerId": "custom", "apiKey": "sk-e2e-kube", "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}
	return kubeDoce{doce: doce, hc: hc, llm: llm, proxy: proxy}
}

// doceEnv is the settings of a doce run on this machine with its workspaces on the cluster, and
// where its egress proxy listens.
func (k kubeBackendEnv) doceEnv(t testing.TB, stack stackEnv) (env []string, proxy string) {
	t.Helper()
	gateway, proxy := freeAddrOn(t, k.HostIP), freeAddrOn(t, k.HostIP)
	env = []string{
		"DOCE_WORKSPACE_BACKEND=kubernetes",
		"DOCE_KUBECONFIG=" + k.Kubeconfig,
		"DOCE_KUBE_NAMESPACE=" + k.Namespace,
		"DOCE_KUBE_STORAGE_SIZE=256m",
		// The cluster's containerd holds the workspace image under the same name.
		"DOCE_OPENCODE_IMAGE=" + stack.OpenCodeImage,
		"DOCE_GATEWAY_ADDR=" + gateway,
		"DOCE_GATEWAY_URL=http://" + gateway,
		// The worker's egress proxy, where the pods reach this machine.
		"DOCE_KUBE_EGRESS_PROXY=" + proxy,
		// The provider's base URL names host.docker.internal: the gateway dials it there.
		"DOCE_HOST_GATEWAY=" + hostGatewayIP(t),
		// doce runs on a node, outside the cluster: its address reaches the pods.
		"DOCE_WORKSPACE_CLIENTS=" + k.HostIP,
	}
	if k.StorageClass != "" {
		env = append(env, "DOCE_KUBE_STORAGE_CLASS="+k.StorageClass)
	}
	if k.ChownVolume {
		env = append(env, "DOCE_KUBE_CHOWN_VOLUME=true")
	}
	return env, proxy
}

// backend is the Kubernetes backend on the test cluster, as doce's worker opens it.
func (k kubeBackendEnv) backend(t testing.TB) *workspace.Kube {
	t.Helper()
	b, err := workspace.NewKube(workspace.KubeConfig{Kubeconfig: k.Kubeconfig, Namespace: k.Namespace, DoceNamespace: "doce", StorageBytes: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKubernetesPodKilledMidSetupThenIdle: the project's pod is deleted while setup waits for
// OpenCode (as an eviction or a node's loss would); setup makes it again and reaches ready.
// Then, unwatched, the workspace is stopped for idleness: the pod goes, the claim stays.
func TestKubernetesPodKilledMidSetupThenIdle(t *testing.T) {
	stack := requireStack(t)
	kube := requireKubeBackend(t)
	const idle = 40 * time.Second
	d := kube.startDoce(t, stack, "DOCE_WORKSPACE_IDLE="+idle.String())
	p := createProject(t, d.hc, d.doce, "a pod killed mid-setup")
	t.Cleanup(func() { _ = kubeDown(kube, p.ID) })

	// The first pod, as soon as it runs: OpenCode takes seconds more to answer.
	ctx := context.Background()
	var first *corev1.Pod
	waitFor(t, "the project's first pod running", 3*time.Minute, func() (bool, error) {
		pod, err := kube.client.CoreV1().Pods(kube.Namespace).Get(ctx, "doce-"+p.ID, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		first = pod
		return pod.Status.Phase == corev1.PodRunning, fmt.Errorf("phase %s", pod.Status.Phase)
	})
	if getProject(t, d.hc, d.doce, p.ID).Status == "ready" {
		t.Fatalf("the project was ready before its pod could be killed")
	}
	zero := int64(0)
	if err := kube.client.CoreV1().Pods(kube.Namespace).Delete(ctx, first.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, d.hc, d.doce, p.ID, "ready", 5*time.Minute)
	pod, err := kube.client.CoreV1().Pods(kube.Namespace).Get(ctx, "doce-"+p.ID, metav1.GetOptions{})
	if err != nil || pod.UID == first.UID {
		t.Fatalf("after the kill: pod %v, %v; want a new one", pod.UID, err)
	}
	waitFor(t, "the prompt reaches the mock LLM", time.Minute, func() (bool, error) {
		return d.llm.requestsWith("a pod killed mid-setup") != "", fmt.Errorf("%d requests, none with the prompt", len(d.llm.requests()))
	})

	// Nobody watches it: the idle stop deletes the pod and keeps the claim.
	waitStatus(t, d.hc, d.doce, p.ID, "stopped", idle+3*time.Minute)
	waitFor(t, "the pod gone, the claim kept", time.Minute, func() (bool, error) {
		n := kube.objects(t, p.ID)
		return n["pod"] == 0 && n["claim"] == 1, fmt.Errorf("%v", n)
	})
}

// checkCordon: the ops page lists the cluster's nodes, with the workspace on one, and an
// administrator cordons it (the node becomes unschedulable) and uncordons it.
func (k kubeBackendEnv) checkCordon(t *testing.T, hc *recordingClient, doce *doceProcess) {
	t.Helper()
	status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/ops/nodes", nil)
	var v struct{ Nodes []workspace.Node }
	if err := json.Unmarshal(body, &v); err != nil || status != http.StatusOK || len(v.Nodes) == 0 {
		t.Fatalf("nodes: %d %s", status, body)
	}
	n := v.Nodes[0]
	if !n.Ready || n.Cordoned || n.Workspaces < 1 {
		t.Errorf("node %+v: want ready, not cordoned, with the workspace", n)
	}
	ctx := context.Background()
	unschedulable := func() bool {
		t.Helper()
		node, err := k.client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return node.Spec.Unschedulable
	}
	// Whatever happens here, the next test's pods find the node schedulable.
	t.Cleanup(func() {
		_, _ = k.client.CoreV1().Nodes().Patch(context.Background(), n.Name, types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":false}}`), metav1.PatchOptions{})
	})
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/ops/nodes/"+n.Name+"/cordon", nil); status != http.StatusOK || !unschedulable() {
		t.Fatalf("cordon: %d %s (unschedulable %v)", status, body, unschedulable())
	}
	resp, err := hc.Get(doce.URL + "/ops")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `action="/ops/nodes/`+n.Name+`/uncordon"`) || strings.Contains(string(page), "Docker hosts") {
		t.Errorf("the ops page does not show %s cordoned, or shows Docker hosts:\n%.2000s", n.Name, page)
	}
	resp, err = hc.PostForm(doce.URL+"/ops/nodes/"+n.Name+"/uncordon", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || unschedulable() {
		t.Fatalf("uncordon from the ops page: %d (unschedulable %v)", resp.StatusCode, unschedulable())
	}
}

// checkEgress runs probes in the project's pod: its NetworkPolicy lets nothing out directly
// but DNS, doce and the endpoints doce serves, and the egress proxy applies the project's mode
// (open, allow-list, off) to what goes through it. The proxy knows the pod by its address:
// the same request from this machine is no workspace's.
func (k kubeBackendEnv) checkEgress(t *testing.T, hc *recordingClient, doce *doceProcess, projectID, proxy, allowed, unserved string) {
	t.Helper()
	setEgress := func(mode string, allow ...string) {
		t.Helper()
		status, body := apiCall(t, hc, doce.URL, "PUT", "/api/v1/projects/"+projectID+"/egress", map[string]any{"mode": mode, "allow": append([]string{}, allow...)})
		if status != http.StatusOK || !strings.Contains(string(body), `"effective":"`+mode+`"`) {
			t.Fatalf("set egress %s: %d %s", mode, status, body)
		}
	}
	probe := func(args ...string) probeResult {
		t.Helper()
		return parseProbe(t, k.exec(t, projectID, "bash", "-c", probeScript(args...)))
	}
	blocked := func(what string, args ...string) {
		t.Helper()
		r := probe(args...)
		t.Logf("%s: curl exit %d, HTTP %d, %s", what, r.rc, r.status, r.took)
		if r.rc == 0 && r.status != http.StatusForbidden || r.status/100 == 2 {
			t.Errorf("%s: reached (exit %d, HTTP %d):\n%s", what, r.rc, r.status, r.out)
		}
	}
	reached := func(what string, args ...string) {
		t.Helper()
		r := probe(args...)
		t.Logf("%s: curl exit %d, HTTP %d, %s", what, r.rc, r.status, r.took)
		if r.rc != 0 || !strings.Contains(r.out, "the allowed destination") {
			t.Errorf("%s: not reached (exit %d, HTTP %d):\n%s", what, r.rc, r.status, r.out)
		}
	}
	direct := func(url string) []string { return []string{"--noproxy", "*", url} }
	// NO_PROXY names the pods' gateway (the LLM gateway is served there): the stand-in for the
	// internet on the same address is reached through the proxy only when curl is told to.
	proxied := func(args ...string) []string { return append([]string{"--noproxy", ""}, args...) }

	setEgress("open")
	blocked("direct to this machine, on a port not served", direct(unserved)...)
	blocked("direct to the metadata address", direct("http://169.254.169.254/latest/meta-data/")...)
	blocked("direct to the destination the proxy would reach", direct(allowed)...)
	reached("open: the destination, through the proxy", proxied(allowed)...)

	setEgress("allow-list", k.HostIP)
	reached("allow-list: the listed destination", proxied(allowed)...)
	reached("allow-list: the listed destination, tunnelled (CONNECT)", proxied("-p", allowed)...)
	blocked("allow-list: a host not listed", "http://example.com/")

	setEgress("off")
	blocked("off: the listed destination", proxied(allowed)...)
	blocked("off: the listed destination, tunnelled (CONNECT)", proxied("-p", allowed)...)

	// From this machine, the proxy is no way out: it is for workspaces alone.
	proxyURL, _ := url.Parse("http://" + proxy)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := c.Get(allowed)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a request from this machine through the proxy: HTTP %d, want 403 (not a workspace)", resp.StatusCode)
	}
}

// kubeDown removes what a failed test left of a project.
func kubeDown(k kubeBackendEnv, projectID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := "doce-" + projectID
	zero := int64(0)
	_ = k.client.CoreV1().Pods(k.Namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	_ = k.client.CoreV1().PersistentVolumeClaims(k.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	_ = k.client.CoreV1().Secrets(k.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	return k.client.NetworkingV1().NetworkPolicies(k.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
}

func tarGzNames(t *testing.T, b []byte) []string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the export is no gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for range 100000 {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		} else if err != nil {
			t.Fatalf("the export is no whole tar: %v", err)
		}
		names = append(names, h.Name)
	}
	t.Fatal("the export has more than 100000 entries")
	return nil
}
