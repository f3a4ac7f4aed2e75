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

// workspaceEgress is what a worker does so its host's workspaces reach only what they may: the
// egress proxy, listening where workspaces find host.docker.internal, and the host firewall.
type workspaceEgress struct {
	firewall *egress.Firewall // nil: DOCE_WORKSPACE_FIREWALL=none
	proxy    *egress.Proxy
	listener net.Listener
	// env goes into every workspace's environment.
	env []string
}

func newWorkspaceEgress(ctx context.Context, cfg *config.Config, st *store.Store, ws *workspace.Manager, log *slog.Logger) (*workspaceEgress, error) {
	gateway := cfg.HostGateway
	if !gateway.IsValid() {
		var err error
		if gateway, err = ws.HostGateway(ctx); err != nil {
			return nil, err
		}
	}
	proxyAt := netip.AddrPortFrom(gateway, uint16(cfg.EgressProxyPort))
	served := []netip.AddrPort{proxyAt}
	noProxy := []string{"localhost", "127.0.0.1", "::1"}
	for _, e := range cfg.WorkspaceServed {
		ap, err := e.Resolve(gateway)
		if err != nil {
			return nil, err
		}
		served = append(served, ap)
		noProxy = append(noProxy, e.Host)
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
	ln, err := lc.Listen(ctx, "tcp", proxyAt.String())
	if err != nil {
		return nil, fmt.Errorf("egress: the proxy cannot listen on %s (DOCE_EGRESS_PROXY_PORT): %w", proxyAt, err)
	}
	eg := &workspaceEgress{listener: ln, proxy: &egress.Proxy{
		Networks: ws.Networks,
		Rule:     projectRule(cfg, st),
		Dial:     cfg.WorkspacePrivate,
		Served:   served,
		Gateway:  gateway,
		Log:      log.With("component", "egress-proxy"),
	}}
	url := "http://" + egress.HostDockerInternal + ":" + strconv.Itoa(cfg.EgressProxyPort)
	// Tools read one spelling or the other (curl only lower-case http_proxy).
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		eg.env = append(eg.env, k+"="+url)
	}
	np := strings.Join(noProxy, ",")
	eg.env = append(eg.env, "NO_PROXY="+np, "no_proxy="+np)
	if cfg.WorkspaceFirewall == "iptables" {
		eg.firewall = &egress.Firewall{Tag: egress.Tag(cfg.TaskQueue, cfg.HostName), Served: served, Clients: cfg.WorkspaceClients}
		if err := eg.firewall.Ensure(); err != nil {
			ln.Close()
			return nil, fmt.Errorf("%w (the worker keeps the workspace firewall: it needs root, or CAP_NET_ADMIN in the Docker host's network namespace; see docs/egress.md)", err)
		}
	} else {
		log.Warn("DOCE_WORKSPACE_FIREWALL=none: doce keeps no firewall rules for workspaces; the operator's own must stop them reaching the host, private ranges and each other (docs/egress.md)")
	}
	log.Info("workspace egress ready", "proxy", proxyAt.String(), "served", served, "default_mode", cfg.EgressMode, "firewall", cfg.WorkspaceFirewall)
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
