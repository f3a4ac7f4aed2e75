package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// kubeEnv is the test cluster scripts/kube-cluster.sh started for make test.
type kubeEnv struct {
	Client     kubernetes.Interface
	Kubeconfig string
	Namespace  string
	// Image is the workspace image, imported into the cluster's containerd (never pulled).
	Image string
}

// requireKube returns the test cluster. Outside make test (or where make test could not start
// one: it needs root) it is missing and the test is skipped, unless DOCE_TEST_KUBE=1 says it
// must be there.
func requireKube(t testing.TB) kubeEnv {
	t.Helper()
	env := kubeEnv{
		Kubeconfig: os.Getenv("DOCE_TEST_KUBECONFIG"),
		Namespace:  os.Getenv("DOCE_TEST_KUBE_NAMESPACE"),
		Image:      os.Getenv("DOCE_TEST_OPENCODE_IMAGE"),
	}
	if env.Kubeconfig == "" || env.Namespace == "" || env.Image == "" {
		if os.Getenv("DOCE_TEST_KUBE") == "1" {
			t.Fatal("DOCE_TEST_KUBE=1 but DOCE_TEST_KUBECONFIG, DOCE_TEST_KUBE_NAMESPACE or DOCE_TEST_OPENCODE_IMAGE is missing")
		}
		t.Skip("needs the Kubernetes test cluster: run `make test` as root (scripts/kube-cluster.sh)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig %s: %v", env.Kubeconfig, err)
	}
	if env.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return env
}

// TestKubeCluster proves the test cluster runs a workspace the way the Kubernetes backend
// will: a hardened pod in the workspace image on a PersistentVolumeClaim becomes Ready, what it
// writes outlives the pod, and a NetworkPolicy keeps it from the host and private ranges.
func TestKubeCluster(t *testing.T) {
	kube := requireKube(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, ns := kube.Client, kube.Namespace
	name := "kct-" + rand.String(6)
	labels := map[string]string{"app.kubernetes.io/name": "doce-workspace", "doce.dev/test": name}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sel := metav1.ListOptions{LabelSelector: "doce.dev/test=" + name}
		_ = c.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, sel)
		_ = c.NetworkingV1().NetworkPolicies(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
		_ = c.CoreV1().PersistentVolumeClaims(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
	})

	_, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The workspace writes a file on its volume, then waits; Ready once the file is there.
	token := rand.String(16)
	start := time.Now()
	pod := runPod(ctx, t, kube, workspacePod(kube, name+"-a", name, labels,
		fmt.Sprintf("echo %s >/workspace/kept && touch /tmp/ok && exec sleep 600", token)), true)
	t.Logf("hardened workspace pod on a new PVC Ready in %s", time.Since(start).Round(time.Millisecond))
	if err := c.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, kube, pod.Name)

	// A new pod on the same claim reads the file back.
	pod = runPod(ctx, t, kube, workspacePod(kube, name+"-b", name, labels, "cat /workspace/kept"), false)
	if got := podLogs(ctx, t, kube, pod.Name); strings.TrimSpace(got) != token {
		t.Fatalf("the file did not survive the pod: read %q, want %q", got, token)
	}
	t.Log("a file on the PVC survived the pod's deletion")

	// Egress: a listener on the host, reached from a pod by the bridge's gateway and the node's
	// address. Without a policy both connect (so the probe can succeed); with the policy
	// neither does.
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	node, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(node.Items) == 0 {
		t.Fatalf("nodes: %v (%d)", err, len(node.Items))
	}
	var targets []string
	for _, a := range node.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			targets = append(targets, a.Address)
		}
	}
	if cidr := node.Items[0].Spec.PodCIDR; cidr != "" {
		ip, _, err := net.ParseCIDR(cidr)
		if err == nil {
			ip = ip.To4()
			targets = append(targets, net.IPv4(ip[0], ip[1], ip[2], ip[3]+1).String()) // the bridge
		}
	}
	if len(targets) < 2 {
		t.Fatalf("want the node's address and its pod bridge, got %v", targets)
	}
	probe := ""
	for _, ip := range targets {
		probe += fmt.Sprintf("if timeout 3 bash -c '</dev/tcp/%s/%d'; then echo %s:open; else echo %s:blocked; fi; ", ip, port, ip, ip)
	}
	pod = runPod(ctx, t, kube, workspacePod(kube, name+"-open", name, labels, probe), false)
	out := podLogs(ctx, t, kube, pod.Name)
	for _, ip := range targets {
		if !strings.Contains(out, ip+":open") {
			t.Fatalf("without a policy the probe should reach %s:%d; it printed %q", ip, port, out)
		}
	}

	except := []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"}
	for _, ip := range targets {
		if !strings.HasPrefix(ip, "10.") {
			except = append(except, ip+"/32")
		}
	}
	_, err = c.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"doce.dev/test": name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: except}}},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// kube-router applies a new policy within a sync; a pod started after it sees it at once
	// (kube-router adds each pod's rules before the pod is Ready), but retry a few times to
	// tell a slow sync from a policy that does nothing.
	for i := range 5 {
		pod = runPod(ctx, t, kube, workspacePod(kube, fmt.Sprintf("%s-deny%d", name, i), name, labels, probe), false)
		out = podLogs(ctx, t, kube, pod.Name)
		if !strings.Contains(out, ":open") {
			break
		}
	}
	for _, ip := range targets {
		if !strings.Contains(out, ip+":blocked") {
			t.Fatalf("the NetworkPolicy should block %s:%d; the probe printed %q", ip, port, out)
		}
	}
	t.Logf("NetworkPolicy: the pod reaches %v without it and none of them with it", targets)
}

// workspacePod is a pod in the workspace image with the workspace's hardening, running script
// as uid 1000 on the claim (mounted at /workspace), with an in-memory /tmp.
func workspacePod(kube kubeEnv, name, claim string, labels map[string]string, script string) *corev1.Pod {
	drop := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	limits := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000), FSGroup: ptr.To[int64](1000),
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			// The test cluster's hostpath provisioner makes each volume a root-owned 0750
			// folder and, unlike most storage drivers, ignores fsGroup: an init container
			// with CAP_CHOWN alone hands it to uid 1000.
			InitContainers: []corev1.Container{{
				Name: "volume-owner", Image: kube.Image, ImagePullPolicy: corev1.PullNever,
				Command: []string{"chown", "1000:1000", "/workspace"},
				SecurityContext: &corev1.SecurityContext{
					RunAsUser: ptr.To[int64](0), RunAsNonRoot: ptr.To(false),
					AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"CHOWN"}},
				},
				Resources:    corev1.ResourceRequirements{Requests: limits, Limits: limits},
				VolumeMounts: []corev1.VolumeMount{{Name: "workspace", MountPath: "/workspace"}},
			}},
			Containers: []corev1.Container{{
				Name: "workspace", Image: kube.Image, ImagePullPolicy: corev1.PullNever,
				Command:         []string{"bash", "-c", script},
				SecurityContext: drop,
				Resources:       corev1.ResourceRequirements{Requests: limits, Limits: limits},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/tmp/ok"}}},
					PeriodSeconds: 1,
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "workspace", MountPath: "/workspace"},
					{Name: "tmp", MountPath: "/tmp"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "workspace", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
					Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("64Mi")),
				}}},
			},
		},
	}
}

// runPod creates pod and waits until it is Ready (ready) or has run to completion.
func runPod(ctx context.Context, t *testing.T, kube kubeEnv, pod *corev1.Pod, ready bool) *corev1.Pod {
	t.Helper()
	pods := kube.Client.CoreV1().Pods(kube.Namespace)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		if got, err = pods.Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		switch got.Status.Phase {
		case corev1.PodFailed:
			return false, fmt.Errorf("pod %s failed: %s", pod.Name, podLogs(ctx, t, kube, pod.Name))
		case corev1.PodSucceeded:
			return !ready, nil
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return ready, nil
			}
		}
		return false, nil
	})
	if err != nil {
		events, _ := kube.Client.CoreV1().Events(kube.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
		var msgs []string
		for _, e := range events.Items {
			msgs = append(msgs, e.Reason+": "+e.Message)
		}
		t.Fatalf("pod %s: %v\nstatus: %+v\nevents: %s", pod.Name, err, got.Status, strings.Join(msgs, "\n"))
	}
	return got
}

func podLogs(ctx context.Context, t *testing.T, kube kubeEnv, name string) string {
	t.Helper()
	b, err := kube.Client.CoreV1().Pods(kube.Namespace).GetLogs(name, &corev1.PodLogOptions{Container: "workspace"}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of %s: %v", name, err)
	}
	return string(b)
}

func waitGone(ctx context.Context, t *testing.T, kube kubeEnv, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := kube.Client.CoreV1().Pods(kube.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("pod %s still there: %v", name, err)
	}
}
