package workspace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// KubeConfig says where the Kubernetes backend runs workspaces.
type KubeConfig struct {
	// Kubeconfig is the file to reach the cluster with; empty: the in-cluster service account.
	Kubeconfig string
	// Namespace holds every workspace's objects; DoceNamespace is where doce's own pods run
	// (LabelApp=AppDoce), the only pods a workspace's NetworkPolicy lets in.
	Namespace, DoceNamespace string
	// StorageClass of the workspaces' volumes; empty: the cluster's default.
	StorageClass string
	// StorageBytes is the size each workspace's volume asks for.
	StorageBytes int64
	// ChownVolume hands each volume to the agent with an init container that is root with
	// CAP_CHOWN alone, for storage that ignores fsGroup (hostPath provisioners make root-owned
	// folders).
	ChownVolume bool
	// Clients are the address ranges besides doce's own pods that may reach a workspace's ports: doce run outside the cluster.
	Clients []string
	// Served are the endpoints outside the pods that doce serves to workspaces
	// (DOCE_WORKSPACE_SERVED, the LLM gateway and egress proxy of a doce run outside the
	// cluster): a workspace reaches them though they are private addresses.
	Served []netip.AddrPort
}

// Labels of the Kubernetes backend. doce's own pods carry LabelApp=AppDoce: the NetworkPolicy
// of each workspace admits them, and them alone, to OpenCode and the preview.
const (
	LabelApp = "app.kubernetes.io/name"
	AppDoce  = "doce"
	// annotationPod holds what a workspace's pod is made of, on its volume claim, so a Start
	// after a Stop (the pod deleted) makes the same pod again.
	annotationPod       = "dev.doce/pod"
	annotationPoolOwner = "dev.doce/pool-owner"
	annotationPoolSum   = "dev.doce/pool-config"
	// The container's name, and the Secret's key holding OpenCode's password.
	kubeContainer   = "opencode"
	kubePasswordKey = "password"
	// Where the volume claim is mounted while the seed container prepares it.
	kubeSeedDir = "/seed"
	// A pod gives this fraction of its CPU limit as its request: workspaces idle most of the
	// time, and a request of the whole limit would place few on a node.
	kubeCPURequestShare = 8
)

// Kube runs workspaces on Kubernetes: per project a PersistentVolumeClaim (the project and the
// agent's home), a Secret (OpenCode's password), a NetworkPolicy and a pod hardened like the
// Docker container, all named doce-<project id> and labelled LabelProject. Stop deletes the pod
// and keeps the rest; Down deletes all of it. doce reaches OpenCode and the preview at the
// pod's IP (docs/kubernetes.md says why), looked up by Address each time.
type Kube struct {
	client kubernetes.Interface
	rest   *rest.Config
	cfg    KubeConfig
}

// NewKube connects to the cluster cfg names.
func NewKube(cfg KubeConfig) (*Kube, error) {
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to configure the Kubernetes client: %w", err)
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to create the Kubernetes client: %w", err)
	}
	return newKube(c, rc, cfg), nil
}

func newKube(c kubernetes.Interface, rc *rest.Config, cfg KubeConfig) *Kube {
	return &Kube{client: c, rest: rc, cfg: cfg}
}

var _ Backend = (*Kube)(nil)

func kubeName(projectID string) string { return composeProject(projectID) }

// Ping checks the API server answers and lets doce list pods in the namespace.
func (k *Kube) Ping(ctx context.Context) error {
	if _, err := k.client.CoreV1().Pods(k.cfg.Namespace).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fmt.Errorf("workspace: Kubernetes namespace %s unreachable: %w", k.cfg.Namespace, err)
	}
	return nil
}

// Close has nothing to release: the client's connections close with the process.
func (k *Kube) Close() error { return nil }

// podParams is what a workspace's pod is made of, kept on its claim (annotationPod). It holds
// no secret: the password is the Secret's, and the configuration is in the volume.
type podParams struct {
	Image       string   `json:"image"`
	MemoryBytes int64    `json:"memory"`
	NanoCPUs    int64    `json:"nanoCPUs,omitempty"`
	DNS         []string `json:"dns,omitempty"`
	Env         []string `json:"env,omitempty"`
	Import      bool     `json:"import,omitempty"`
}

func kubeLabels(s Spec) map[string]string {
	l := labels(s.ProjectID, "")
	if s.Pooled {
		l[LabelPool] = "true"
	}
	return l
}

// Up makes what is missing of the project's workspace, then its pod.
func (k *Kube) Up(ctx context.Context, s Spec) (Workspace, error) {
	if err := k.ensureSecret(ctx, s); err != nil {
		return Workspace{}, err
	}
	if err := k.ensurePolicy(ctx, s.ProjectID, s.DNS); err != nil {
		return Workspace{}, err
	}
	p := podParams{Image: s.Image, MemoryBytes: s.MemoryBytes, NanoCPUs: s.NanoCPUs, DNS: s.DNS, Env: s.Env, Import: s.Import}
	pvc, err := k.claim(s, p)
	if err != nil {
		return Workspace{}, err
	}
	if err := k.ensure(ctx, "volume claim", func() error {
		_, err := k.client.CoreV1().PersistentVolumeClaims(k.cfg.Namespace).Create(ctx, pvc, metav1.CreateOptions{})
		return err
	}); err != nil {
		return Workspace{}, err
	}
	exists, err := k.podExists(ctx, s.ProjectID)
	if err != nil {
		return Workspace{}, err
	}
	if exists {
		// A prebuilt workspace was started before its project was known: it gets the
		// project's configuration now. A file already there (the agent's edits) is kept.
		if err := k.writeConfigIfMissing(ctx, s.ProjectID, s.OpenCodeConfig); err != nil {
			return Workspace{}, err
		}
	} else {
		if err := k.waitGone(ctx, s.ProjectID); err != nil {
			return Workspace{}, err
		}
		if err := k.createPod(ctx, s.ProjectID, p, s.OpenCodeConfig); err != nil {
			return Workspace{}, err
		}
	}
	return k.waitRunning(ctx, s.ProjectID)
}

// ensure runs create and takes an object already there as made.
func (k *Kube) ensure(ctx context.Context, what string, create func() error) error {
	if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("workspace: unable to create the %s: %w", what, err)
	}
	return nil
}

// ensureSecret makes the Secret with OpenCode's password. A retry finds it made: the first
// password stored wins, as it does in the database.
func (k *Kube) ensureSecret(ctx context.Context, s Spec) error {
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: kubeName(s.ProjectID), Namespace: k.cfg.Namespace, Labels: labels(s.ProjectID, "")},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{kubePasswordKey: []byte(s.Password)},
	}
	return k.ensure(ctx, "secret", func() error {
		_, err := k.client.CoreV1().Secrets(k.cfg.Namespace).Create(ctx, sec, metav1.CreateOptions{})
		return err
	})
}

func (k *Kube) claim(s Spec, p podParams) (*corev1.PersistentVolumeClaim, error) {
	made, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	ann := map[string]string{annotationPod: string(made)}
	if s.Pooled {
		ann[annotationPoolOwner], ann[annotationPoolSum] = s.PoolOwner, s.ConfigSum
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: kubeName(s.ProjectID), Namespace: k.cfg.Namespace, Labels: kubeLabels(s), Annotations: ann},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(k.cfg.StorageBytes, resource.BinarySI)}},
		},
	}
	if k.cfg.StorageClass != "" {
		pvc.Spec.StorageClassName = &k.cfg.StorageClass
	}
	return pvc, nil
}

// seedScript prepares a workspace's volume on the pod's first start: the project and the home
// as the image has them (Docker copies an image's directory into a new volume; Kubernetes
// does not), then doce's opencode.json and AGENTS.md when missing. It runs as the agent.
const seedScript = `set -e
mkdir -p ` + kubeSeedDir + `/workspace ` + kubeSeedDir + `/home
if [ ! -e ` + kubeSeedDir + `/home/.doce-seeded ]; then
  cp -a ` + HomeDir + `/. ` + kubeSeedDir + `/home/
  cp -a ` + workspaceDir + `/. ` + kubeSeedDir + `/workspace/
  touch ` + kubeSeedDir + `/home/.doce-seeded
fi
cd ` + kubeSeedDir + `/workspace
if [ -n "$DOCE_OPENCODE_CONFIG" ] && [ ! -e ` + configFile + ` ]; then printf '%s' "$DOCE_OPENCODE_CONFIG" > ` + configFile + `; fi
if [ ! -e ` + agentsFile + ` ]; then printf '%s' "$DOCE_AGENTS_MD" > ` + agentsFile + `; fi`

// hardened is the security context of every container of a workspace's pod: the agent runs
// whatever a prompt leads it to, so it gets no capability, cannot gain privileges, and writes
// only its volume and /tmp.
func hardened() *corev1.SecurityContext {
	f, t := false, true
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: &f,
		Privileged:               &f,
		ReadOnlyRootFilesystem:   &t,
		RunAsNonRoot:             &t,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// pod is the project's pod: the Docker container's hardening in Kubernetes' terms. Kubernetes
// has no per-pod pids limit: the kubelet's podPidsLimit bounds every pod of a node.
func (k *Kube) pod(projectID string, p podParams, pooled bool, config []byte) *corev1.Pod {
	uid, f := int64(AgentUID), false
	tmp := resource.MustParse(kubeTmpSize)
	mem := *resource.NewQuantity(p.MemoryBytes, resource.BinarySI)
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: mem},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: mem},
	}
	if p.NanoCPUs > 0 {
		res.Limits[corev1.ResourceCPU] = *resource.NewMilliQuantity(p.NanoCPUs/1e6, resource.DecimalSI)
		res.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(max(p.NanoCPUs/1e6/kubeCPURequestShare, 10), resource.DecimalSI)
	}
	env := []corev1.EnvVar{
		{Name: "OPENCODE_SERVER_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: kubeName(projectID)}, Key: kubePasswordKey}}},
		{Name: "PORT", Value: strconv.Itoa(AppPort)},
		{Name: "OPENCODE_DISABLE_MODELS_FETCH", Value: "true"},
	}
	if p.Import {
		env = append(env, corev1.EnvVar{Name: "DOCE_IMPORT", Value: "1"})
	}
	for _, kv := range p.Env {
		name, value, _ := strings.Cut(kv, "=")
		env = append(env, corev1.EnvVar{Name: name, Value: value})
	}
	l := labels(projectID, serviceName)
	if pooled {
		l[LabelPool] = "true"
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: kubeName(projectID), Namespace: k.cfg.Namespace, Labels: l},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: &f,
			// Service links would tell the agent of every Service in the namespace.
			EnableServiceLinks: &f,
			RestartPolicy:      corev1.RestartPolicyAlways,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid, RunAsNonRoot: ptr(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			TerminationGracePeriodSeconds: ptr(int64(stopGrace / time.Second)),
			InitContainers: []corev1.Container{{
				Name: "seed", Image: p.Image, Command: []string{"sh", "-c", seedScript},
				Env: []corev1.EnvVar{{Name: "DOCE_OPENCODE_CONFIG", Value: string(config)}, {Name: "DOCE_AGENTS_MD", Value: string(AgentsMD)}},
				// The image's own /workspace and home are the seed: the claim is mounted beside them.
				VolumeMounts:    []corev1.VolumeMount{{Name: "data", MountPath: kubeSeedDir}},
				SecurityContext: hardened(), Resources: res,
			}},
			Containers: []corev1.Container{{
				Name: kubeContainer, Image: p.Image, WorkingDir: workspaceDir, Env: env,
				Ports: []corev1.ContainerPort{
					{Name: "opencode", ContainerPort: kubeOpenCodePort},
					{Name: "preview", ContainerPort: AppPort},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "data", MountPath: workspaceDir, SubPath: "workspace"},
					{Name: "data", MountPath: HomeDir, SubPath: "home"},
					{Name: "tmp", MountPath: "/tmp"},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(kubeOpenCodePort)}},
					PeriodSeconds: 1, FailureThreshold: 3,
				},
				SecurityContext: hardened(), Resources: res,
			}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: kubeName(projectID)}}},
				// In memory, counted against the memory limit, like Docker's tmpfs.
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &tmp}}},
			},
		},
	}
	if k.cfg.ChownVolume {
		owner := corev1.Container{
			Name: "volume-owner", Image: p.Image, Command: []string{"chown", strconv.Itoa(AgentUID) + ":" + strconv.Itoa(AgentUID), kubeSeedDir},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: kubeSeedDir}},
			Resources:    res,
			SecurityContext: &corev1.SecurityContext{
				RunAsUser: ptr(int64(0)), RunAsGroup: ptr(int64(0)), RunAsNonRoot: ptr(false),
				AllowPrivilegeEscalation: &f, Privileged: &f, ReadOnlyRootFilesystem: ptr(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"CHOWN"}},
			},
		}
		pod.Spec.InitContainers = append([]corev1.Container{owner}, pod.Spec.InitContainers...)
	}
	if len(p.DNS) > 0 {
		pod.Spec.DNSPolicy = corev1.DNSNone
		pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: p.DNS}
	}
	return pod
}

const (
	kubeOpenCodePort = 4096
	kubeTmpSize      = "256Mi" // tmpSize
)

func ptr[T any](v T) *T { return &v }

// podReady is the pod's Ready condition: every container passed its readiness probe.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// networkPolicy lets into the workspace only doce (its pods, and Clients) on OpenCode's and
// the preview's ports, and out of it only DNS, doce's pods and Served (the LLM gateway and the
// egress proxy of a doce run outside the cluster). The internet is reached through the egress
// proxy alone, under the project's egress mode, as on the Docker backend: a policy that let
// public addresses through would bypass allow-list and off.
//
// DNS goes to the cluster's resolver (pods in kube-system) and to the workspace's own
// resolvers (dns, DOCE_WORKSPACE_DNS), not to port 53 anywhere: that would be a way out to any
// host willing to listen on it.
func (k *Kube) networkPolicy(projectID string, dns []string) *networkingv1.NetworkPolicy {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	port := func(proto corev1.Protocol, n int32) networkingv1.NetworkPolicyPort {
		return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: ptr(intstr.FromInt32(n))}
	}
	inNamespace := func(ns string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	}
	// doce's pods, in doce's namespace alone: a label is anyone's to set on a pod of their own.
	doce := networkingv1.NetworkPolicyPeer{
		NamespaceSelector: inNamespace(k.cfg.DoceNamespace),
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{LabelApp: AppDoce}},
	}
	from := []networkingv1.NetworkPolicyPeer{doce}
	for _, c := range k.cfg.Clients {
		from = append(from, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
	}
	resolvers := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: inNamespace("kube-system")}}
	for _, d := range dns {
		if a, err := netip.ParseAddr(d); err == nil {
			resolvers = append(resolvers, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: netip.PrefixFrom(a, a.BitLen()).String()}})
		}
	}
	egress := []networkingv1.NetworkPolicyEgressRule{
		{To: resolvers, Ports: []networkingv1.NetworkPolicyPort{port(udp, 53), port(tcp, 53)}},
		{To: []networkingv1.NetworkPolicyPeer{doce}},
	}
	for _, ap := range k.cfg.Served {
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: netip.PrefixFrom(ap.Addr(), ap.Addr().BitLen()).String()}}},
			Ports: []networkingv1.NetworkPolicyPort{port(tcp, int32(ap.Port()))},
		})
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: kubeName(projectID), Namespace: k.cfg.Namespace, Labels: labels(projectID, "")},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelProject: projectID, LabelManaged: "true"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: from, Ports: []networkingv1.NetworkPolicyPort{port(tcp, kubeOpenCodePort), port(tcp, AppPort)},
			}},
			Egress: egress,
		},
	}
}

// ensurePolicy makes the project's NetworkPolicy, or brings one an earlier doce made up to
// date, so that a workspace made before a policy change gets it at its next start.
func (k *Kube) ensurePolicy(ctx context.Context, projectID string, dns []string) error {
	want := k.networkPolicy(projectID, dns)
	nps := k.client.NetworkingV1().NetworkPolicies(k.cfg.Namespace)
	_, err := nps.Create(ctx, want, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("workspace: unable to create the network policy: %w", err)
		}
		return nil
	}
	have, err := nps.Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("workspace: unable to read the network policy: %w", err)
	}
	if equality.Semantic.DeepEqual(have.Spec, want.Spec) {
		return nil
	}
	have.Spec = want.Spec
	if _, err := nps.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("workspace: unable to update the network policy: %w", err)
	}
	return nil
}

// Networks maps the address of each workspace pod to its project, for the egress proxy to
// know which project a connection comes from. A pod without capabilities cannot send from an
// address other than its own.
func (k *Kube) Networks(ctx context.Context) (map[netip.Prefix]string, error) {
	l, err := k.client.CoreV1().Pods(k.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelManaged + "=true"})
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to list workspace pods: %w", err)
	}
	out := map[netip.Prefix]string{}
	for _, p := range l.Items {
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err == nil {
				out[netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())] = p.Labels[LabelProject]
			}
		}
	}
	return out, nil
}

func (k *Kube) getPod(ctx context.Context, projectID string) (*corev1.Pod, error) {
	pod, err := k.client.CoreV1().Pods(k.cfg.Namespace).Get(ctx, kubeName(projectID), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("workspace: unable to read the pod: %w", err)
	}
	return pod, nil
}

// podExists reports whether the project's pod is there and not on its way out.
func (k *Kube) podExists(ctx context.Context, projectID string) (bool, error) {
	pod, err := k.getPod(ctx, projectID)
	return pod != nil && pod.DeletionTimestamp == nil, err
}

func (k *Kube) createPod(ctx context.Context, projectID string, p podParams, config []byte) error {
	// A pod that ended for good (evicted, its node lost) keeps its name until deleted.
	if old, err := k.getPod(ctx, projectID); err != nil {
		return err
	} else if old != nil && (old.Status.Phase == corev1.PodFailed || old.Status.Phase == corev1.PodSucceeded) {
		if err := k.client.CoreV1().Pods(k.cfg.Namespace).Delete(ctx, old.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("workspace: unable to delete the ended pod: %w", err)
		}
		if err := k.waitGone(ctx, projectID); err != nil {
			return err
		}
	}
	pvc, err := k.client.CoreV1().PersistentVolumeClaims(k.cfg.Namespace).Get(ctx, kubeName(projectID), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("workspace: unable to read the volume claim: %w", err)
	}
	pod := k.pod(projectID, p, pvc.Labels[LabelPool] == "true", config)
	_, err = k.client.CoreV1().Pods(k.cfg.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("workspace: unable to create the pod: %w", err)
	}
	return nil
}

// kubeStartLimit bounds the wait for a new pod to run: a volume to bind, an image to pull.
const kubeStartLimit = 2 * time.Minute

// waitRunning waits for the project's pod to run (OpenCode's own readiness is the activities'
// health check). A pod the image cannot be pulled for is ErrImageMissing.
func (k *Kube) waitRunning(ctx context.Context, projectID string) (Workspace, error) {
	deadline := time.Now().Add(kubeStartLimit)
	for {
		pod, err := k.getPod(ctx, projectID)
		if err != nil {
			return Workspace{}, err
		}
		if pod != nil && pod.DeletionTimestamp == nil {
			if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" {
				return Workspace{ContainerID: string(pod.UID), ContainerName: pod.Name, HostPort: kubeOpenCodePort, PreviewHostPort: AppPort}, nil
			}
			for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
				if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff" || w.Reason == "ErrImageNeverPull") {
					return Workspace{}, fmt.Errorf("%w: %s (%s)", ErrImageMissing, pod.Spec.Containers[0].Image, w.Reason)
				}
			}
		}
		if time.Now().After(deadline) {
			phase := "none"
			if pod != nil {
				phase = string(pod.Status.Phase)
			}
			return Workspace{}, fmt.Errorf("workspace: the pod does not run after %s (phase %s)", kubeStartLimit, phase)
		}
		select {
		case <-ctx.Done():
			return Workspace{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Start makes the project's pod again, as its claim says it was made, and waits for it to run.
func (k *Kube) Start(ctx context.Context, projectID string) (Workspace, error) {
	pvc, err := k.client.CoreV1().PersistentVolumeClaims(k.cfg.Namespace).Get(ctx, kubeName(projectID), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Workspace{}, ErrNoWorkspace
	} else if err != nil {
		return Workspace{}, fmt.Errorf("workspace: unable to read the volume claim: %w", err)
	}
	var p podParams
	if err := json.Unmarshal([]byte(pvc.Annotations[annotationPod]), &p); err != nil {
		return Workspace{}, fmt.Errorf("workspace: the volume claim does not say what its pod is made of: %w", err)
	}
	if err := k.ensurePolicy(ctx, projectID, p.DNS); err != nil {
		return Workspace{}, err
	}
	// A pod still going away from a Stop cannot be made again under its name until it is gone.
	if err := k.waitGone(ctx, projectID); err != nil {
		return Workspace{}, err
	}
	if err := k.createPod(ctx, projectID, p, nil); err != nil {
		return Workspace{}, err
	}
	return k.waitRunning(ctx, projectID)
}

func (k *Kube) waitGone(ctx context.Context, projectID string) error {
	deadline := time.Now().Add(stopGrace + 20*time.Second)
	for {
		pod, err := k.getPod(ctx, projectID)
		if err != nil || pod == nil || pod.DeletionTimestamp == nil {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("workspace: the stopped pod is not gone yet")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop deletes the project's pod, keeping its volume claim for a later Start.
func (k *Kube) Stop(ctx context.Context, projectID string) error {
	grace := int64(stopGrace / time.Second)
	err := k.client.CoreV1().Pods(k.cfg.Namespace).Delete(ctx, kubeName(projectID), metav1.DeleteOptions{GracePeriodSeconds: &grace})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("workspace: unable to delete the pod: %w", err)
	}
	return nil
}

// Down deletes everything the project owns: pod, volume claim, Secret, NetworkPolicy (each
// named kubeName). Missing ones are fine.
func (k *Kube) Down(ctx context.Context, projectID string) error {
	ns, name := k.cfg.Namespace, kubeName(projectID)
	now := metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}
	for what, del := range map[string]func() error{
		"pod": func() error { return k.client.CoreV1().Pods(ns).Delete(ctx, name, now) },
		"volume claim": func() error {
			return k.client.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, name, metav1.DeleteOptions{})
		},
		"secret": func() error { return k.client.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{}) },
		"network policy": func() error {
			return k.client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, name, metav1.DeleteOptions{})
		},
	} {
		if err := del(); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("workspace: unable to delete the project's %s: %w", what, err)
		}
	}
	return nil
}

// Inspect says whether the project's workspace exists (its claim) and whether its pod runs.
func (k *Kube) Inspect(ctx context.Context, projectID string) (Container, error) {
	_, err := k.client.CoreV1().PersistentVolumeClaims(k.cfg.Namespace).Get(ctx, kubeName(projectID), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Container{}, nil
	} else if err != nil {
		return Container{}, fmt.Errorf("workspace: unable to read the volume claim: %w", err)
	}
	// No pod is a stopped workspace, as Docker's exited container.
	w := Container{Exists: true, Status: "exited"}
	pod, err := k.getPod(ctx, projectID)
	if err != nil || pod == nil {
		return w, err
	}
	w.Status = strings.ToLower(string(pod.Status.Phase))
	if pod.DeletionTimestamp != nil {
		w.Status = "removing"
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != kubeContainer {
			continue
		}
		w.Restarts = int(cs.RestartCount)
		if t := cs.LastTerminationState.Terminated; t != nil {
			w.ExitCode, w.OOMKilled = int(t.ExitCode), t.Reason == "OOMKilled"
		}
		w.Running = cs.State.Running != nil && pod.DeletionTimestamp == nil && pod.Status.PodIP != ""
	}
	if w.Running {
		w.Status, w.HostPort, w.PreviewHostPort = "running", kubeOpenCodePort, AppPort
	}
	return w, nil
}

// Address is the IP of the project's running pod, where doce reaches OpenCode and the preview.
func (k *Kube) Address(ctx context.Context, projectID string) (string, error) {
	pod, err := k.getPod(ctx, projectID)
	if err != nil {
		return "", err
	}
	if pod == nil || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
		return "", ErrNotRunning
	}
	return pod.Status.PodIP, nil
}

// Accepts dials OpenCode's port on the project's pod once the kubelet's readiness probe has
// found it open. Before that a refusal proves nothing: OpenCode opens its port a while after
// the pod runs, and nothing stands in front of it (Docker's published port has docker-proxy,
// which Accepts exists to find missing).
func (k *Kube) Accepts(ctx context.Context, projectID string, port int) error {
	pod, err := k.getPod(ctx, projectID)
	if err != nil {
		return err
	}
	if pod == nil || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
		return ErrNotRunning
	}
	if !podReady(pod) {
		return nil
	}
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("workspace: nothing accepts on the pod's port %d: %w", port, err)
	}
	return conn.Close()
}

// PooledIDs lists the workspaces pool owner made, claimed or not (their claims: a stopped one
// has no pod).
func (k *Kube) PooledIDs(ctx context.Context, owner string) ([]string, error) {
	l, err := k.client.CoreV1().PersistentVolumeClaims(k.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelPool + "=true"})
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to list pooled volume claims: %w", err)
	}
	var ids []string
	for _, c := range l.Items {
		if c.Annotations[annotationPoolOwner] == owner {
			ids = append(ids, c.Labels[LabelProject])
		}
	}
	return ids, nil
}

// Pooled reports whether the project's workspace was made for the pool, and on which
// configuration.
func (k *Kube) Pooled(ctx context.Context, projectID string) (bool, string, error) {
	c, err := k.client.CoreV1().PersistentVolumeClaims(k.cfg.Namespace).Get(ctx, kubeName(projectID), metav1.GetOptions{})
	if err != nil {
		return false, "", fmt.Errorf("workspace: unable to read the volume claim: %w", err)
	}
	return c.Labels[LabelPool] == "true", c.Annotations[annotationPoolSum], nil
}

// ClaimCPU has nothing to do on Kubernetes: a pooled pod is scheduled with the CPU request of
// any other, since a request is a reservation the scheduler places by, not a share to raise.
func (k *Kube) ClaimCPU(context.Context, string) error { return nil }

// exec runs cmd in the project's pod through the API server's exec subresource, as the agent
// (the pod's user), in /workspace, with env.
func (k *Kube) exec(ctx context.Context, projectID string, env, cmd []string, stdin io.Reader, stdout io.Writer) error {
	ok, err := k.podExists(ctx, projectID)
	if err != nil {
		return err
	} else if !ok {
		return k.missing(ctx, projectID)
	}
	// Exec has no working directory or environment of its own: env sets both.
	argv := append(append([]string{"env", "-C", workspaceDir}, env...), cmd...)
	req := k.client.CoreV1().RESTClient().Post().Namespace(k.cfg.Namespace).Resource("pods").Name(kubeName(projectID)).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{
		Container: kubeContainer, Command: argv, Stdin: stdin != nil, Stdout: true, Stderr: true,
	}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(k.rest, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("workspace: unable to run %s in the workspace: %w", cmd[0], err)
	}
	var stderr strings.Builder
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: &limitWriter{w: &stderr, max: 8 << 10}})
	var exit utilexec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		return &ExitError{Code: exit.ExitStatus(), Stderr: stderr.String()}
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("workspace: unable to run %s in the workspace: %w", cmd[0], err)
}

// missing says why there is no pod to run a command in: no workspace at all, or a stopped one.
func (k *Kube) missing(ctx context.Context, projectID string) error {
	c, err := k.Inspect(ctx, projectID)
	if err != nil {
		return err
	}
	if !c.Exists {
		return ErrNoWorkspace
	}
	return ErrNotRunning
}

func (k *Kube) runIn(projectID string) runFunc {
	return func(ctx context.Context, env, cmd []string, stdin io.Reader, stdout io.Writer) error {
		return k.exec(ctx, projectID, env, cmd, stdin, stdout)
	}
}

// Files streams /workspace out of the running pod as tar (entries under "workspace/"). A
// stopped workspace has no pod to read it through: ErrNotRunning.
func (k *Kube) Files(ctx context.Context, projectID string) (io.ReadCloser, error) {
	if ok, err := k.podExists(ctx, projectID); err != nil {
		return nil, err
	} else if !ok {
		return nil, k.missing(ctx, projectID)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(k.exec(ctx, projectID, nil, []string{"tar", "-c", "-f", "-", "-C", "/", strings.TrimPrefix(workspaceDir, "/")}, nil, pw))
	}()
	return pr, nil
}

// HasRepository reports whether a repository was placed in the project's workspace whole.
func (k *Kube) HasRepository(ctx context.Context, projectID string) (bool, error) {
	var out strings.Builder
	script := `if [ -e ` + importedMark + ` ]; then echo imported; elif [ -e .git ]; then echo own; else echo none; fi`
	if err := k.exec(ctx, projectID, nil, []string{"sh", "-c", script}, nil, &limitWriter{w: &out, max: 64}); err != nil {
		return false, err
	}
	switch strings.TrimSpace(out.String()) {
	case "imported":
		return true, nil
	case "own":
		return false, ErrStartedWithoutImport
	}
	return false, nil
}

// PlaceTree unpacks the tree at dir into the project's workspace, the mark last.
func (k *Kube) PlaceTree(ctx context.Context, projectID, dir string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTree(pw, dir)) }()
	defer pr.Close()
	if err := k.exec(ctx, projectID, nil, []string{"tar", "-x", "-f", "-", "--no-same-owner"}, pr, io.Discard); err != nil {
		return fmt.Errorf("workspace: unable to place the repository: %w", err)
	}
	return nil
}

// Commit, Bundle and Merge: see Manager's.
func (k *Kube) Commit(ctx context.Context, projectID string, author Author, message string) (bool, error) {
	return commit(ctx, k.runIn(projectID), author, message)
}

func (k *Kube) Bundle(ctx context.Context, projectID string, w io.Writer, max int64) error {
	return bundle(ctx, k.runIn(projectID), w, max)
}

func (k *Kube) Merge(ctx context.Context, projectID string, r io.Reader, base string, author Author, message string) (MergeResult, error) {
	return merge(ctx, k.runIn(projectID), r, base, author, message)
}

// ReplaceConfig: see Manager's.
func (k *Kube) ReplaceConfig(ctx context.Context, projectID string, replaceable func(now []byte) bool, to []byte) ([]byte, bool, error) {
	var now bytes.Buffer
	if err := k.exec(ctx, projectID, nil, []string{"cat", configFile}, nil, &limitWriter{w: &now, max: 1 << 20}); err != nil {
		return nil, false, fmt.Errorf("workspace: unable to read %s: %w", configFile, err)
	}
	if !replaceable(now.Bytes()) {
		return now.Bytes(), false, nil
	}
	if err := k.writeConfig(ctx, projectID, to, false); err != nil {
		return nil, false, err
	}
	return to, true, nil
}

func (k *Kube) writeConfigIfMissing(ctx context.Context, projectID string, config []byte) error {
	if config == nil {
		return nil
	}
	return k.writeConfig(ctx, projectID, config, true)
}

// writeConfig writes opencode.json in the workspace (only when missing, if onlyMissing).
func (k *Kube) writeConfig(ctx context.Context, projectID string, config []byte, onlyMissing bool) error {
	if config == nil {
		return nil
	}
	script := `cat > ` + configFile
	if onlyMissing {
		script = `if [ -e ` + configFile + ` ]; then cat >/dev/null; else ` + script + `; fi`
	}
	if err := k.exec(ctx, projectID, nil, []string{"sh", "-c", script}, bytes.NewReader(config), io.Discard); err != nil {
		return fmt.Errorf("workspace: unable to write %s: %w", configFile, err)
	}
	return nil
}

// Node is a node of the cluster as the ops page shows it: placement is the scheduler's, and
// cordoning a node (no new pods on it) is what draining a Docker host is on this backend.
type Node struct {
	Name     string `json:"name"`
	Ready    bool   `json:"ready"`
	Cordoned bool   `json:"cordoned"`
	// Workspaces counts the workspace pods on it.
	Workspaces int `json:"workspaces"`
}

// ErrNoNode is a node the cluster does not have.
var ErrNoNode = errors.New("workspace: no such node")

// Nodes lists the cluster's nodes, with the workspace pods each runs.
func (k *Kube) Nodes(ctx context.Context) ([]Node, error) {
	nodes, err := k.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to list the cluster's nodes: %w", err)
	}
	pods, err := k.client.CoreV1().Pods(k.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelManaged + "=true"})
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to list workspace pods: %w", err)
	}
	on := map[string]int{}
	for _, p := range pods.Items {
		on[p.Spec.NodeName]++
	}
	out := make([]Node, 0, len(nodes.Items))
	for _, n := range nodes.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
			}
		}
		out = append(out, Node{Name: n.Name, Ready: ready, Cordoned: n.Spec.Unschedulable, Workspaces: on[n.Name]})
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Cordon marks a node unschedulable, or schedulable again: the scheduler places no new
// workspace on a cordoned node, and the ones there keep running (kubectl cordon).
func (k *Kube) Cordon(ctx context.Context, name string, cordoned bool) error {
	patch := fmt.Appendf(nil, `{"spec":{"unschedulable":%t}}`, cordoned)
	_, err := k.client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return ErrNoNode
	} else if err != nil {
		return fmt.Errorf("workspace: unable to cordon node %s: %w", name, err)
	}
	return nil
}
