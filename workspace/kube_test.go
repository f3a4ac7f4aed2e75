package workspace

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const testNS = "doce-ws"

// fakeKube is the backend on client-go's fake clientset, where a pod runs as soon as it is
// created (there is no kubelet to run it).
func fakeKube(t *testing.T) (*Kube, *fake.Clientset) {
	t.Helper()
	c := fake.NewClientset()
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		pod.Status.Phase, pod.Status.PodIP = corev1.PodRunning, "10.244.0.7"
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: kubeContainer, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		return false, nil, nil // the tracker stores it, with this status
	})
	return newKube(c, nil, KubeConfig{Namespace: testNS, DoceNamespace: "doce", StorageBytes: 5 << 30, Clients: []string{"192.0.2.10/32"},
		Served: []netip.AddrPort{netip.MustParseAddrPort("10.88.0.1:8081")}}), c
}

func testSpec(id string) Spec {
	return Spec{ProjectID: id, Image: "doce/workspace:test", Password: "s3cret-pw", MemoryBytes: 1 << 30, NanoCPUs: 2e9,
		PidsLimit: 1024, OpenCodeConfig: []byte(`{"model":"x"}`), Env: []string{"HTTP_PROXY=http://proxy:3128"}}
}

func TestKubeUpMakesAHardenedPod(t *testing.T) {
	ctx := context.Background()
	k, c := fakeKube(t)
	const id = "0193c1d2-aaaa-7bbb-8ccc-0123456789ab"
	ws, err := k.Up(ctx, testSpec(id))
	if err != nil {
		t.Fatal(err)
	}
	if ws.ContainerName != "doce-"+id || ws.HostPort != 4096 || ws.PreviewHostPort != AppPort {
		t.Errorf("workspace %+v", ws)
	}
	pod, err := c.CoreV1().Pods(testNS).Get(ctx, "doce-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Labels[LabelProject] != id || pod.Labels[LabelManaged] != "true" {
		t.Errorf("pod labels %v", pod.Labels)
	}
	ps := pod.Spec
	sc := ps.SecurityContext
	if sc == nil || *sc.RunAsUser != 1000 || *sc.RunAsGroup != 1000 || *sc.FSGroup != 1000 || !*sc.RunAsNonRoot ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", sc)
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken || ps.EnableServiceLinks == nil || *ps.EnableServiceLinks {
		t.Error("the pod gets a service-account token or service links")
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		t.Error("the pod shares a host namespace")
	}
	if len(ps.Containers) != 1 || len(ps.InitContainers) != 1 {
		t.Fatalf("containers %d, init containers %d", len(ps.Containers), len(ps.InitContainers))
	}
	for _, ct := range append(slices.Clone(ps.InitContainers), ps.Containers...) {
		s := ct.SecurityContext
		if s == nil || *s.AllowPrivilegeEscalation || *s.Privileged || !*s.ReadOnlyRootFilesystem || !*s.RunAsNonRoot ||
			s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(s.Capabilities.Add) != 0 {
			t.Errorf("%s: security context %+v", ct.Name, s)
		}
		if ct.Resources.Limits.Memory().Value() != 1<<30 || ct.Resources.Requests.Memory().Value() != 1<<30 ||
			ct.Resources.Limits.Cpu().MilliValue() != 2000 || ct.Resources.Requests.Cpu().MilliValue() != 250 {
			t.Errorf("%s: resources %+v", ct.Name, ct.Resources)
		}
	}
	oc := ps.Containers[0]
	if p := oc.ReadinessProbe; p == nil || p.TCPSocket == nil || p.TCPSocket.Port.IntValue() != 4096 {
		t.Errorf("readiness probe %+v", oc.ReadinessProbe)
	}
	var pw *corev1.EnvVar
	for i, e := range oc.Env {
		if e.Name == "OPENCODE_SERVER_PASSWORD" {
			pw = &oc.Env[i]
		}
	}
	if pw == nil || pw.Value != "" || pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil || pw.ValueFrom.SecretKeyRef.Name != "doce-"+id {
		t.Errorf("OpenCode's password does not come from the Secret: %+v", pw)
	}
	var tmp *corev1.Volume
	for i, v := range ps.Volumes {
		if v.Name == "tmp" {
			tmp = &ps.Volumes[i]
		}
	}
	if tmp == nil || tmp.EmptyDir == nil || tmp.EmptyDir.Medium != corev1.StorageMediumMemory || tmp.EmptyDir.SizeLimit.Value() != 256<<20 {
		t.Errorf("/tmp is not a bounded in-memory volume: %+v", tmp)
	}
	// The password is in the Secret, and nowhere else: not in the pod, not on the claim.
	pvc, err := c.CoreV1().PersistentVolumeClaims(testNS).Get(ctx, "doce-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for what, obj := range map[string]any{"pod": pod, "claim": pvc} {
		b, _ := json.Marshal(obj)
		if strings.Contains(string(b), "s3cret-pw") {
			t.Errorf("the %s holds the password", what)
		}
	}
	sec, err := c.CoreV1().Secrets(testNS).Get(ctx, "doce-"+id, metav1.GetOptions{})
	if err != nil || string(sec.Data[kubePasswordKey]) != "s3cret-pw" || sec.Labels[LabelProject] != id {
		t.Errorf("secret %+v, %v", sec, err)
	}
	if pvc.Spec.Resources.Requests.Storage().Value() != 5<<30 || pvc.Labels[LabelProject] != id {
		t.Errorf("claim %+v", pvc)
	}
}

func TestKubeNetworkPolicy(t *testing.T) {
	ctx := context.Background()
	k, c := fakeKube(t)
	const id = "0193c1d2-aaaa-7bbb-8ccc-0123456789ac"
	if _, err := k.Up(ctx, testSpec(id)); err != nil {
		t.Fatal(err)
	}
	np, err := c.NetworkingV1().NetworkPolicies(testNS).Get(ctx, "doce-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if np.Spec.PodSelector.MatchLabels[LabelProject] != id || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) ||
		!slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("policy selects %v, types %v", np.Spec.PodSelector, np.Spec.PolicyTypes)
	}
	// In: doce's pods and the configured clients, on OpenCode's and the preview's ports only.
	if len(np.Spec.Ingress) != 1 {
		t.Fatalf("ingress rules %+v", np.Spec.Ingress)
	}
	in := np.Spec.Ingress[0]
	if len(in.From) != 2 || in.From[0].PodSelector.MatchLabels[LabelApp] != AppDoce || in.From[1].IPBlock.CIDR != "192.0.2.10/32" ||
		in.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "doce" {
		t.Errorf("ingress from %+v", in.From)
	}
	var ports []int
	for _, p := range in.Ports {
		ports = append(ports, p.Port.IntValue())
	}
	if !slices.Equal(ports, []int{4096, AppPort}) {
		t.Errorf("ingress ports %v", ports)
	}
	// Out: DNS to the cluster's resolver, doce's pods and the served endpoint, each on its
	// port; no address block beyond: the internet is the egress proxy's to reach.
	if len(np.Spec.Egress) != 3 {
		t.Fatalf("egress rules %+v, want DNS, doce and the served endpoint", np.Spec.Egress)
	}
	dns, doce, served := np.Spec.Egress[0], np.Spec.Egress[1], np.Spec.Egress[2]
	if len(dns.To) != 1 || dns.To[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "kube-system" || dns.To[0].IPBlock != nil ||
		len(dns.Ports) != 2 || dns.Ports[0].Port.IntValue() != 53 || dns.Ports[1].Port.IntValue() != 53 {
		t.Errorf("DNS rule %+v: want port 53 to kube-system alone", dns)
	}
	if len(doce.To) != 1 || doce.To[0].PodSelector.MatchLabels[LabelApp] != AppDoce || doce.To[0].IPBlock != nil {
		t.Errorf("doce rule %+v", doce)
	}
	if len(served.To) != 1 || served.To[0].IPBlock == nil || served.To[0].IPBlock.CIDR != "10.88.0.1/32" ||
		len(served.Ports) != 1 || served.Ports[0].Port.IntValue() != 8081 {
		t.Errorf("served rule %+v: want 10.88.0.1/32 on 8081 alone", served)
	}

	// The workspace's own resolvers are let through on port 53, as addresses.
	if p := k.networkPolicy(id, []string{"192.0.2.53"}); len(p.Spec.Egress[0].To) != 2 || p.Spec.Egress[0].To[1].IPBlock.CIDR != "192.0.2.53/32" {
		t.Errorf("DNS rule with a resolver: %+v", p.Spec.Egress[0])
	}
}

// TestKubeStartUpdatesAnOlderPolicy: a workspace made under another policy (one that let the
// internet through) gets the current one when it starts again.
func TestKubeStartUpdatesAnOlderPolicy(t *testing.T) {
	ctx := context.Background()
	k, c := fakeKube(t)
	const id = "0193c1d2-aaaa-7bbb-8ccc-0123456789ad"
	if _, err := k.Up(ctx, testSpec(id)); err != nil {
		t.Fatal(err)
	}
	nps := c.NetworkingV1().NetworkPolicies(testNS)
	old, err := nps.Get(ctx, "doce-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old.Spec.Egress = append(old.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}})
	if _, err := nps.Update(ctx, old, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := k.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	now, err := nps.Get(ctx, "doce-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range now.Spec.Egress {
		for _, to := range r.To {
			if to.IPBlock != nil && to.IPBlock.CIDR == "0.0.0.0/0" {
				t.Fatal("the started workspace kept the older policy's way to the internet")
			}
		}
	}
}

// TestKubeNetworksNamesEachPodsProject: the egress proxy tells workspaces apart by their pods'
// addresses.
func TestKubeNetworksNamesEachPodsProject(t *testing.T) {
	ctx := context.Background()
	k, c := fakeKube(t)
	const a, b = "0193c1d2-aaaa-7bbb-8ccc-0123456789ae", "0193c1d2-aaaa-7bbb-8ccc-0123456789af"
	for _, id := range []string{a, b} {
		if _, err := k.Up(ctx, testSpec(id)); err != nil {
			t.Fatal(err)
		}
	}
	// The fake gives every pod one address: give b its own, as a cluster would.
	pod, err := c.CoreV1().Pods(testNS).Get(ctx, "doce-"+b, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.8"}, {IP: "fd00::8"}}
	if _, err := c.CoreV1().Pods(testNS).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, _ = c.CoreV1().Pods(testNS).Get(ctx, "doce-"+a, metav1.GetOptions{})
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.7"}}
	if _, err := c.CoreV1().Pods(testNS).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	nets, err := k.Networks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Prefix]string{
		netip.MustParsePrefix("10.244.0.7/32"): a,
		netip.MustParsePrefix("10.244.0.8/32"): b,
		netip.MustParsePrefix("fd00::8/128"):   b,
	}
	if len(nets) != len(want) {
		t.Fatalf("networks %v, want %v", nets, want)
	}
	for p, id := range want {
		if nets[p] != id {
			t.Errorf("%s → %q, want %q", p, nets[p], id)
		}
	}
}

func TestKubeStopKeepsTheClaimAndStartMakesThePodAgain(t *testing.T) {
	ctx := context.Background()
	k, c := fakeKube(t)
	const id = "0193c1d2-aaaa-7bbb-8ccc-0123456789ad"
	if _, err := k.Up(ctx, testSpec(id)); err != nil {
		t.Fatal(err)
	}
	if w, err := k.Inspect(ctx, id); err != nil || !w.Exists || !w.Running || w.HostPort != 4096 {
		t.Fatalf("running: %+v, %v", w, err)
	}
	if addr, err := k.Address(ctx, id); err != nil || addr != "10.244.0.7" {
		t.Errorf("address %q, %v", addr, err)
	}
	if err := k.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Pods(testNS).Get(ctx, "doce-"+id, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the pod is still there after Stop: %v", err)
	}
	if w, err := k.Inspect(ctx, id); err != nil || !w.Exists || w.Running || w.HostPort != 0 {
		t.Errorf("stopped: %+v, %v", w, err)
	}
	if _, err := k.Address(ctx, id); !errors.Is(err, ErrNotRunning) {
		t.Errorf("address of a stopped workspace: %v", err)
	}
	if err := k.Stop(ctx, id); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
	if _, err := k.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	pod, err := c.CoreV1().Pods(testNS).Get(ctx, "doce-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Made again as it was: its image, limits and environment came back from the claim.
	oc := pod.Spec.Containers[0]
	if oc.Image != "doce/workspace:test" || oc.Resources.Limits.Memory().Value() != 1<<30 ||
		!slices.ContainsFunc(oc.Env, func(e corev1.EnvVar) bool { return e.Name == "HTTP_PROXY" && e.Value == "http://proxy:3128" }) {
		t.Errorf("pod made again differs: %+v", oc)
	}
	// An evicted pod keeps its name: a start deletes it and makes the pod again.
	pod.Status.Phase, pod.Status.ContainerStatuses = corev1.PodFailed, nil
	if _, err := c.CoreV1().Pods(testNS).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if w, err := k.Inspect(ctx, id); err != nil || w.Running {
		t.Fatalf("evicted: %+v, %v", w, err)
	}
	if _, err := k.Start(ctx, id); err != nil {
		t.Fatalf("start after an eviction: %v", err)
	}
	if w, err := k.Inspect(ctx, id); err != nil || !w.Running {
		t.Errorf("after the start that followed an eviction: %+v, %v", w, err)
	}
	if _, err := k.Start(ctx, "0193c1d2-0000-7000-8000-000000000000"); !errors.Is(err, ErrNoWorkspace) {
		t.Errorf("Start of no workspace: %v", err)
	}
}

func TestKubeDownLeavesNothing(t *testing.T) {
	ctx := context.Background()
	k, c := fakeKube(t)
	const id, other = "0193c1d2-aaaa-7bbb-8ccc-0123456789ae", "0193c1d2-aaaa-7bbb-8ccc-0123456789af"
	for _, p := range []string{id, other} {
		if _, err := k.Up(ctx, testSpec(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Down(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := k.Down(ctx, id); err != nil {
		t.Errorf("a second Down: %v", err)
	}
	sel := metav1.ListOptions{LabelSelector: LabelProject + "=" + id}
	pods, _ := c.CoreV1().Pods(testNS).List(ctx, sel)
	pvcs, _ := c.CoreV1().PersistentVolumeClaims(testNS).List(ctx, sel)
	secs, _ := c.CoreV1().Secrets(testNS).List(ctx, sel)
	nps, _ := c.NetworkingV1().NetworkPolicies(testNS).List(ctx, sel)
	if n := len(pods.Items) + len(pvcs.Items) + len(secs.Items) + len(nps.Items); n != 0 {
		t.Errorf("%d objects left after Down", n)
	}
	if w, err := k.Inspect(ctx, id); err != nil || w.Exists {
		t.Errorf("after Down: %+v, %v", w, err)
	}
	// The other project's are untouched.
	if w, err := k.Inspect(ctx, other); err != nil || !w.Running {
		t.Errorf("the other project after Down: %+v, %v", w, err)
	}
}

func TestKubePool(t *testing.T) {
	ctx := context.Background()
	k, _ := fakeKube(t)
	s := testSpec("0193c1d2-aaaa-7bbb-8ccc-0123456789b0")
	s.Pooled, s.ConfigSum, s.PoolOwner = true, strings.Repeat("ab", 32), "doce-host-local"
	if _, err := k.Up(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Up(ctx, testSpec("0193c1d2-aaaa-7bbb-8ccc-0123456789b1")); err != nil {
		t.Fatal(err)
	}
	if ids, err := k.PooledIDs(ctx, "doce-host-local"); err != nil || !slices.Equal(ids, []string{s.ProjectID}) {
		t.Errorf("pooled ids %v, %v", ids, err)
	}
	if ids, err := k.PooledIDs(ctx, "another-pool"); err != nil || len(ids) != 0 {
		t.Errorf("another pool's ids %v, %v", ids, err)
	}
	if pooled, sum, err := k.Pooled(ctx, s.ProjectID); err != nil || !pooled || sum != s.ConfigSum {
		t.Errorf("pooled %v %q %v", pooled, sum, err)
	}
}

// TestKubeChownVolumeAddsOnlyCapChown: for storage that ignores fsGroup, one init container
// hands the volume to the agent, root with CAP_CHOWN alone, before the seed step.
func TestKubeChownVolumeAddsOnlyCapChown(t *testing.T) {
	ctx := context.Background()
	k, c := fakeKube(t)
	k.cfg.ChownVolume = true
	const id = "0193c1d2-aaaa-7bbb-8ccc-0123456789ac"
	if _, err := k.Up(ctx, testSpec(id)); err != nil {
		t.Fatal(err)
	}
	pod, err := c.CoreV1().Pods(testNS).Get(ctx, "doce-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inits := pod.Spec.InitContainers
	if len(inits) != 2 || inits[0].Name != "volume-owner" || inits[1].Name != "seed" {
		t.Fatalf("init containers %v, want volume-owner then seed", inits)
	}
	o := inits[0]
	s := o.SecurityContext
	if s == nil || *s.RunAsUser != 0 || *s.RunAsNonRoot || *s.AllowPrivilegeEscalation || *s.Privileged || !*s.ReadOnlyRootFilesystem ||
		!slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(s.Capabilities.Add, []corev1.Capability{"CHOWN"}) {
		t.Errorf("volume-owner security context %+v", s)
	}
	if !slices.Equal(o.Command, []string{"chown", "1000:1000", kubeSeedDir}) || len(o.VolumeMounts) != 1 || o.VolumeMounts[0].Name != "data" {
		t.Errorf("volume-owner runs %v on %v", o.Command, o.VolumeMounts)
	}
	// Without the setting, no container of the pod runs as root.
	k.cfg.ChownVolume = false
	if p := k.pod(id, podParams{Image: "x", MemoryBytes: 1 << 30}, false, nil); len(p.Spec.InitContainers) != 1 {
		t.Errorf("init containers without ChownVolume: %d", len(p.Spec.InitContainers))
	}
}

// TestKubeAcceptsWaitsForReadiness: before the kubelet finds OpenCode's port open, a refused
// dial proves nothing; after, it does.
func TestKubeAcceptsWaitsForReadiness(t *testing.T) {
	ctx := context.Background()
	k, c := fakeKube(t)
	const id = "0193c1d2-aaaa-7bbb-8ccc-0123456789b0"
	if _, err := k.Up(ctx, testSpec(id)); err != nil {
		t.Fatal(err)
	}
	// A port nothing listens on, on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pod, err := c.CoreV1().Pods(testNS).Get(ctx, "doce-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.PodIP = "127.0.0.1"
	if _, err := c.CoreV1().Pods(testNS).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := k.Accepts(ctx, id, closed); err != nil {
		t.Errorf("a pod not ready yet: %v, want nil", err)
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := c.CoreV1().Pods(testNS).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := k.Accepts(ctx, id, closed); err == nil {
		t.Error("a ready pod whose port refuses: nil, want an error")
	}
}

func TestKubeNodesAndCordon(t *testing.T) {
	ctx := context.Background()
	k, c := fakeKube(t)
	for _, name := range []string{"node-b", "node-a"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
		if _, err := c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const id = "0193c1d2-aaaa-7bbb-8ccc-0123456789b1"
	if _, err := k.Up(ctx, testSpec(id)); err != nil {
		t.Fatal(err)
	}
	pod, _ := c.CoreV1().Pods(testNS).Get(ctx, "doce-"+id, metav1.GetOptions{})
	pod.Spec.NodeName = "node-b"
	if _, err := c.CoreV1().Pods(testNS).Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := k.Cordon(ctx, "node-b", true); err != nil {
		t.Fatal(err)
	}
	nodes, err := k.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{{Name: "node-a", Ready: true}, {Name: "node-b", Ready: true, Cordoned: true, Workspaces: 1}}
	if !slices.Equal(nodes, want) {
		t.Errorf("nodes %+v, want %+v", nodes, want)
	}
	if err := k.Cordon(ctx, "node-b", false); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.CoreV1().Nodes().Get(ctx, "node-b", metav1.GetOptions{}); n.Spec.Unschedulable {
		t.Error("uncordon left the node unschedulable")
	}
	if err := k.Cordon(ctx, "no-such-node", true); !errors.Is(err, ErrNoNode) {
		t.Errorf("cordon a missing node: %v, want ErrNoNode", err)
	}
}
