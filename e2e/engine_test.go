package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	dockerclient "github.com/docker/docker/client"

	"github.com/doce-dev/doce/workspace"
)

// dockerEngine is a second Docker engine on this machine, the test's own: its own socket, data
// and exec roots, its own default bridge, its networks carved from an address pool no other
// engine here uses, the workspace image loaded from the main engine. It stands for another
// Docker host. Everything on it is the test's, and goes with it.
type dockerEngine struct {
	Host   string // its DOCKER_HOST
	Client *dockerclient.Client
	dir    string
	pool   *net.IPNet
	bridge string // its default bridge, made by the test
}

// startDockerEngine starts a dockerd until the test ends and loads image into it.
func startDockerEngine(t testing.TB, image string) *dockerEngine {
	t.Helper()
	return startDockerEngineWith(t, image, 0)
}

// startDockerEngineWith is startDockerEngine with an address pool of only networks networks
// (0: 256).
func startDockerEngineWith(t testing.TB, image string, networks int) *dockerEngine {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a second Docker engine needs root")
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("a second Docker engine needs dockerd")
	}
	gateway := hostGatewayIP(t)
	dir, err := os.MkdirTemp("", "doce-dk-") // short: containerd's sockets live under it
	if err != nil {
		t.Fatal(err)
	}
	pool := freeAddressPool(t)
	e := &dockerEngine{Host: "unix://" + filepath.Join(dir, "docker.sock"), dir: dir, pool: pool,
		bridge: "dcbr" + strings.TrimPrefix(filepath.Base(dir), "doce-dk-")}
	// Its default bridge is one made here: with --bridge=none dockerd deletes the interface
	// docker0 at start, the main engine's.
	bip := net.IPv4(pool.IP[0], pool.IP[1], 255, 1).String() + "/24"
	for _, args := range [][]string{
		{"link", "add", "name", e.bridge, "type", "bridge"}, {"addr", "add", bip, "dev", e.bridge}, {"link", "set", e.bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			exec.Command("ip", "link", "delete", e.bridge).Run()
			os.RemoveAll(dir)
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	logs, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--host", e.Host,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		// Its own default bridge, no iptables rules beside the main engine's: its networks are
		// bridges from its own pool, its published ports docker-proxy listeners.
		"--bridge", e.bridge, "--iptables=false",
		"--default-address-pool", poolSpec(pool, networks),
		// host.docker.internal is the main engine's bridge gateway, where the tests' stand-ins
		// listen, as for every workspace.
		"--host-gateway-ip", gateway,
		"--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logs.Close() }()
	_, mainBridge := net.InterfaceByName("docker0")
	t.Cleanup(func() {
		e.stop(t, cmd, exited)
		if _, err := net.InterfaceByName("docker0"); mainBridge == nil && err != nil {
			t.Errorf("the main engine's docker0 is gone after the second engine ran: %v", err)
		}
	})

	if e.Client, err = dockerclient.NewClientWithOpts(dockerclient.WithHost(e.Host), dockerclient.WithAPIVersionNegotiation()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := e.Client.Ping(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("second dockerd exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("second dockerd did not answer within a minute: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	start := time.Now()
	main, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	saved, err := main.ImageSave(ctx, []string{image})
	if err != nil {
		t.Fatal(err)
	}
	defer saved.Close()
	loaded, err := e.Client.ImageLoad(ctx, saved)
	if err != nil {
		t.Fatal(err)
	}
	// The load is done when its progress stream ends.
	out, err := io.ReadAll(loaded.Body)
	loaded.Body.Close()
	if err != nil || strings.Contains(string(out), `"errorDetail"`) {
		t.Fatalf("loading %s into the second engine: %v %s", image, err, out)
	}
	if _, err := e.Client.ImageInspect(ctx, image); err != nil {
		t.Fatalf("image %s not on the second engine after loading it: %v", image, err)
	}
	t.Logf("second Docker engine at %s (networks from %s), image loaded in %s", e.Host, pool, time.Since(start).Round(100*time.Millisecond))
	return e
}

// freeAddressPool is a /16 under 10.0.0.0/8 no interface or route here is in.
// poolSpec is dockerd's --default-address-pool for networks networks (a power of two up to 64;
// 0: 256) of pool, a /16 whose last /24 is the default bridge's.
func poolSpec(pool *net.IPNet, networks int) string {
	if networks == 0 {
		return "base=" + pool.String() + ",size=24"
	}
	// One /24 split in networks: a /25 for two, a /26 for four.
	size := 24 + bits.Len(uint(networks)) - 1
	return fmt.Sprintf("base=%d.%d.0.0/24,size=%d", pool.IP[0], pool.IP[1], size)
}

func freeAddressPool(t testing.TB) *net.IPNet {
	t.Helper()
	var used []*net.IPNet
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			used = append(used, n)
		}
	}
	if f, err := os.Open("/proc/net/route"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 8 || fs[1] == "Destination" {
				continue
			}
			var dst, mask uint32
			fmt.Sscanf(fs[1], "%x", &dst)
			fmt.Sscanf(fs[7], "%x", &mask)
			le := func(v uint32) net.IP { return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
			if mask != 0 {
				used = append(used, &net.IPNet{IP: le(dst), Mask: net.IPMask(le(mask).To4())})
			}
		}
	}
	for second := 231; second < 255; second++ {
		candidate := &net.IPNet{IP: net.IPv4(10, byte(second), 0, 0).To4(), Mask: net.CIDRMask(16, 32)}
		free := true
		for _, u := range used {
			if u.Contains(candidate.IP) || candidate.Contains(u.IP) {
				free = false
				break
			}
		}
		if free {
			return candidate
		}
	}
	t.Fatal("no free 10.x.0.0/16 for a second Docker engine's networks")
	return nil
}

// stop removes everything on the engine (all of it the test's), stops dockerd and removes its
// roots, leaving neither processes, mounts nor bridges behind.
func (e *dockerEngine) stop(t testing.TB, cmd *exec.Cmd, exited chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if e.Client != nil {
		if cs, err := e.Client.ContainerList(ctx, container.ListOptions{All: true}); err == nil {
			for _, c := range cs {
				e.Client.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
			}
		}
		if ns, err := e.Client.NetworkList(ctx, network.ListOptions{}); err == nil {
			for _, n := range ns {
				if n.Name != "none" && n.Name != "host" && n.Name != "bridge" {
					e.Client.NetworkRemove(ctx, n.ID)
				}
			}
		}
		if vs, err := e.Client.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs()}); err == nil {
			for _, v := range vs.Volumes {
				e.Client.VolumeRemove(ctx, v.Name, true)
			}
		}
		e.Client.Close()
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Logf("second dockerd did not stop within 30s; killing it")
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	// Its containerd, if it outlived dockerd: the one whose command line names this engine's
	// own roots.
	if procs, err := filepath.Glob("/proc/[0-9]*/cmdline"); err == nil {
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err == nil && strings.Contains(string(b), e.dir) {
				var pid int
				fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		lines := strings.Split(string(b), "\n")
		for i := len(lines) - 1; i >= 0; i-- { // innermost first
			if fs := strings.Fields(lines[i]); len(fs) > 1 && strings.HasPrefix(fs[1], e.dir) {
				syscall.Unmount(fs[1], syscall.MNT_DETACH)
			}
		}
	}
	// Its default bridge, and bridges of its networks that a stop left: only those with an
	// address from its pool.
	if ifs, err := net.Interfaces(); err == nil {
		for _, ifc := range ifs {
			addrs, _ := ifc.Addrs()
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && e.pool.Contains(n.IP) && (strings.HasPrefix(ifc.Name, "br-") || ifc.Name == e.bridge) {
					exec.Command("ip", "link", "delete", ifc.Name).Run()
				}
			}
		}
	}
	if err := os.RemoveAll(e.dir); err != nil {
		t.Logf("second engine's roots left at %s: %v", e.dir, err)
	}
}

// containersOf lists the containers of a project on an engine.
func containersOf(t testing.TB, docker *dockerclient.Client, projectID string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := docker.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+projectID))})
	if err != nil {
		t.Fatal(err)
	}
	return len(cs)
}

// objectsOf counts everything a project has on an engine: containers, networks, volumes.
func objectsOf(t testing.TB, docker *dockerclient.Client, projectID string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	label := filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+projectID))
	n := containersOf(t, docker, projectID)
	ns, err := docker.NetworkList(ctx, network.ListOptions{Filters: label})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := docker.VolumeList(ctx, volume.ListOptions{Filters: label})
	if err != nil {
		t.Fatal(err)
	}
	return n + len(ns) + len(vs.Volumes)
}
