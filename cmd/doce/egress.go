package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/doce-dev/doce/config"
	"github.com/doce-dev/doce/egress"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// workspaceEgress is what a worker does so its workspaces reach only what they may: the egress
// proxy, their one way to the internet, and on Docker the host firewall (on Kubernetes each
// workspace's NetworkPolicy lets out only DNS, doce and the proxy).
type workspaceEgress struct {
	firewall *egress.Firewall // nil: DOCE_WORKSPACE_FIREWALL=none, or Kubernetes
	proxy    *egress.Proxy
	listener net.Listener
	// env goes into every workspace's environment.
	env []string
}

// proxySite is where a backend's workspaces find the egress proxy: the address the proxy
// listens on, the host:port workspaces are given, the endpoints they reach directly (the
// proxy's among them when it has a fixed address) and what host.docker.internal stands for.
type proxySite struct {
	listen, url string
	served      []netip.AddrPort
	noProxy     []string
	gateway     netip.Addr
	networks    func(context.Context) (map[netip.Prefix]string, error)
}

// dockerProxySite: the proxy listens where workspaces find host.docker.internal, the Docker
// bridge's gateway.
func dockerProxySite(ctx context.Context, cfg *config.Config, ws *workspace.Manager) (proxySite, error) {
	gateway := cfg.HostGateway
	if !gateway.IsValid() {
		var err error
		if gateway, err = ws.HostGateway(ctx); err != nil {
			return proxySite{}, err
		}
	}
	proxyAt := netip.AddrPortFrom(gateway, uint16(cfg.EgressProxyPort))
	site := proxySite{listen: proxyAt.String(), url: net.JoinHostPort(egress.HostDockerInternal, strconv.Itoa(cfg.EgressProxyPort)),
		served: []netip.AddrPort{proxyAt}, gateway: gateway, networks: ws.Networks}
	for _, e := range cfg.WorkspaceServed {
		ap, err := e.Resolve(gateway)
		if err != nil {
			return proxySite{}, err
		}
		site.served = append(site.served, ap)
		site.noProxy = append(site.noProxy, e.Host)
	}
	return site, nil
}

// kubeProxySite: workspaces find the proxy at DOCE_KUBE_EGRESS_PROXY. An address there is on
// this machine (a doce run on a node); a name is a Service in front of the workers' pods,
// which listen on every interface of their own.
func kubeProxySite(cfg *config.Config, k *workspace.Kube) proxySite {
	site := proxySite{listen: ":" + strconv.Itoa(cfg.EgressProxyPort), url: cfg.KubeEgressProxy,
		served: kubeServed(cfg), gateway: cfg.HostGateway, networks: k.Networks}
	if ap, err := netip.ParseAddrPort(cfg.KubeEgressProxy); err == nil {
		site.listen = ap.String()
	}
	for _, e := range cfg.WorkspaceServed {
		site.noProxy = append(site.noProxy, e.Host)
	}
	return site
}

// kubeServed are the endpoints outside the cluster's pods that a workspace's NetworkPolicy lets
// it reach: DOCE_WORKSPACE_SERVED, and the egress proxy when DOCE_KUBE_EGRESS_PROXY is an
// address. host.docker.internal means something only where DOCE_HOST_GATEWAY says what;
// doce's own pods are let through anyway.
func kubeServed(cfg *config.Config) []netip.AddrPort {
	var served []netip.AddrPort
	for _, e := range cfg.WorkspaceServed {
		if ap, err := e.Resolve(cfg.HostGateway); err == nil {
			served = append(served, ap)
		}
	}
	if ap, err := netip.ParseAddrPort(cfg.KubeEgressProxy); err == nil {
		served = append(served, ap)
	}
	return served
}

func newWorkspaceEgress(ctx context.Context, cfg *config.Config, st *store.Store, backend workspace.Backend, log *slog.Logger) (*workspaceEgress, error) {
	var site proxySite
	switch b := backend.(type) {
	case *workspace.Manager:
		var err error
		if site, err = dockerProxySite(ctx, cfg, b); err != nil {
			return nil, err
		}
	case *workspace.Kube:
		site = kubeProxySite(cfg, b)
	default:
		return nil, fmt.Errorf("egress: no egress proxy for a %T workspace backend", backend)
	}
	// Workers scaled on one host (compose --scale) share the port: any of them serves any
	// workspace of the engine they share.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(ctx, "tcp", site.listen)
	if err != nil {
		return nil, fmt.Errorf("egress: the proxy cannot listen on %s (DOCE_EGRESS_PROXY_PORT): %w", site.listen, err)
	}
	eg := &workspaceEgress{listener: ln, proxy: &egress.Proxy{
		Networks: site.networks,
		Rule:     projectRule(cfg, st),
		Dial:     cfg.WorkspacePrivate,
		Served:   site.served,
		Gateway:  site.gateway,
		Log:      log.With("component", "egress-proxy"),
	}}
	url := "http://" + site.url
	// Tools read one spelling or the other (curl only lower-case http_proxy).
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		eg.env = append(eg.env, k+"="+url)
	}
	np := strings.Join(append([]string{"localhost", "127.0.0.1", "::1"}, site.noProxy...), ",")
	eg.env = append(eg.env, "NO_PROXY="+np, "no_proxy="+np)
	switch {
	case cfg.WorkspaceBackend == workspace.BackendKubernetes:
		// Each workspace's NetworkPolicy is its firewall.
	case cfg.WorkspaceFirewall == "iptables":
		eg.firewall = &egress.Firewall{Tag: egress.Tag(cfg.TaskQueue, cfg.HostName), Served: site.served, Clients: cfg.WorkspaceClients}
		if err := eg.firewall.Ensure(); err != nil {
			ln.Close()
			return nil, fmt.Errorf("%w (the worker keeps the workspace firewall: it needs root, or CAP_NET_ADMIN in the Docker host's network namespace; see docs/egress.md)", err)
		}
	default:
		log.Warn("DOCE_WORKSPACE_FIREWALL=none: doce keeps no firewall rules for workspaces; the operator's own must stop them reaching the host, private ranges and each other (docs/egress.md)")
	}
	log.Info("workspace egress ready", "proxy", ln.Addr().String(), "workspaces_use", url, "served", site.served, "default_mode", cfg.EgressMode, "firewall", eg.firewall != nil)
	return eg, nil
}

// check puts back firewall rules something removed (a flush, a firewall reload).
func (eg *workspaceEgress) check() error {
	if eg.firewall == nil {
		return nil
	}
	return eg.firewall.Ensure()
}

// projectRule reads a workspace's egress rule from its project: the project's mode or the
// operator's default, and the operator's allow list with the project's own.
func projectRule(cfg *config.Config, st *store.Store) func(ctx context.Context, id string) (egress.Rule, bool, error) {
	return func(ctx context.Context, id string) (egress.Rule, bool, error) {
		p, err := st.Project(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return egress.Rule{}, false, nil // a prebuilt workspace no project claimed yet
		} else if err != nil {
			return egress.Rule{}, false, err
		}
		if p.DeletedAt != nil {
			return egress.Rule{}, false, nil
		}
		r := egress.Rule{Mode: cfg.EgressMode, Allow: cfg.EgressAllow}
		if p.EgressMode != "" {
			r.Mode = egress.Mode(p.EgressMode)
		}
		if own, err := egress.ParseAllowList(p.EgressAllow); err == nil {
			r.Allow = append(append([]string{}, r.Allow...), own...)
		}
		return r, true, nil
	}
}
