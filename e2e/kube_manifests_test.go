package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestKubeManifests applies deploy/kubernetes to the test cluster with a server-side dry run
// (the API server validates every object, strictly, as if it were stored), then stores the
// namespaces and RBAC for real and asks the API server whether doce's ServiceAccount may do
// what the workspace backend does, and nothing outside its namespace.
func TestKubeManifests(t *testing.T) {
	kube := requireKube(t)
	kubeserver := os.Getenv("DOCE_TEST_KUBESERVER")
	if kubeserver == "" {
		t.Fatal("DOCE_TEST_KUBESERVER (the kubeserver binary with kubectl) is missing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, kubeserver, append([]string{"kubectl", "--kubeconfig", kube.Kubeconfig}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	namespaces := []string{"doce", "doce-workspaces"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, ns := range namespaces {
			_ = kube.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		}
		_ = kube.Client.RbacV1().ClusterRoleBindings().Delete(ctx, "doce-nodes", metav1.DeleteOptions{})
		_ = kube.Client.RbacV1().ClusterRoles().Delete(ctx, "doce-nodes", metav1.DeleteOptions{})
		// Gone before the next test run's dry run, which needs them absent or new.
		_ = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			for _, ns := range namespaces {
				if _, err := kube.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					return false, nil
				}
			}
			return true, nil
		})
	})

	// Namespaced objects dry-run only into a namespace that exists.
	kubectl("apply", "-f", "../deploy/kubernetes/namespaces.yaml")
	out := kubectl("apply", "-k", "../deploy/kubernetes", "--dry-run=server", "-o", "name")
	for _, want := range []string{
		"namespace/doce", "namespace/doce-workspaces", "serviceaccount/doce",
		"role.rbac.authorization.k8s.io/doce-workspaces", "rolebinding.rbac.authorization.k8s.io/doce-workspaces",
		"clusterrole.rbac.authorization.k8s.io/doce-nodes", "clusterrolebinding.rbac.authorization.k8s.io/doce-nodes",
		"configmap/doce", "service/doce", "service/doce-egress", "deployment.apps/doce-serve", "deployment.apps/doce-worker",
		"networkpolicy.networking.k8s.io/default-deny",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("the dry run did not report %s; it printed:\n%s", want, out)
		}
	}

	kubectl("apply", "-f", "../deploy/kubernetes/rbac.yaml")
	as := "--as=system:serviceaccount:doce:doce"
	for _, c := range []struct {
		verb, resource, ns string
		want               string
	}{
		{"create", "pods", "doce-workspaces", "yes"},
		{"delete", "pods", "doce-workspaces", "yes"},
		{"create", "pods/portforward", "doce-workspaces", "yes"},
		{"create", "pods/exec", "doce-workspaces", "yes"},
		{"get", "pods/log", "doce-workspaces", "yes"},
		{"create", "persistentvolumeclaims", "doce-workspaces", "yes"},
		{"create", "secrets", "doce-workspaces", "yes"},
		{"create", "services", "doce-workspaces", "yes"},
		{"create", "networkpolicies.networking.k8s.io", "doce-workspaces", "yes"},
		{"list", "events", "doce-workspaces", "yes"},
		// Nothing outside the workspaces' namespace, nothing that widens its own rights.
		{"get", "secrets", "doce", "no"},
		{"create", "pods", "default", "no"},
		{"create", "roles.rbac.authorization.k8s.io", "doce-workspaces", "no"},
		{"delete", "nodes", "", "no"},
		// The ops page lists and cordons nodes.
		{"list", "nodes", "", "yes"},
		{"patch", "nodes", "", "yes"},
	} {
		args := []string{"auth", "can-i", c.verb, c.resource, as}
		if c.ns != "" {
			args = append(args, "-n", c.ns)
		} else {
			args = append(args, "--all-namespaces")
		}
		// can-i exits 1 for "no": read the answer, not the status.
		cmd := exec.CommandContext(ctx, kubeserver, append([]string{"kubectl", "--kubeconfig", kube.Kubeconfig}, args...)...)
		got, _ := cmd.Output()
		if strings.TrimSpace(string(got)) != c.want {
			t.Errorf("can doce %s %s in %q? %q, want %s", c.verb, c.resource, c.ns, strings.TrimSpace(string(got)), c.want)
		}
	}
}
