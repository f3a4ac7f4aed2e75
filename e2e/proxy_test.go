package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultProxy is the HTTP proxy doce reaches workspaces through in fault tests
// (DOCE_WORKSPACE_PROXY). It forwards everything, except that a rule can answer a matching
// request with an error status, or hold it until the test releases it.
type faultProxy struct {
	URL   string
	mu    sync.Mutex
	rules []*proxyRule
	hits  map[string][]time.Time // "METHOD /path-prefix" of each rule → when requests matched
}

type proxyRule struct {
	method, prefix string
	// With neither status nor release, a rule only counts what it matches.
	status  int           // answer with this instead of forwarding
	release chan struct{} // hold matching requests until closed
	held    chan struct{} // gets a value when a request is held
}

func startFaultProxy(t testing.TB) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fp := &faultProxy{URL: "http://" + ln.Addr().String(), hits: map[string][]time.Time{}}
	srv := &http.Server{Handler: fp}
	go srv.Serve(ln)
	t.Cleanup(func() {
		fp.clear()
		srv.Close()
	})
	return fp
}

// fail answers requests matching method and path prefix with status until clear.
func (fp *faultProxy) fail(method, prefix string, status int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.rules = append(fp.rules, &proxyRule{method: method, prefix: prefix, status: status})
}

// watch counts matching requests (see hitTimes) and forwards them.
func (fp *faultProxy) watch(method, prefix string) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.rules = append(fp.rules, &proxyRule{method: method, prefix: prefix})
}

// hold keeps matching requests waiting; the returned channel signals each one held, and
// release lets them (and later ones) through.
func (fp *faultProxy) hold(method, prefix string) (held <-chan struct{}, release func()) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	r := &proxyRule{method: method, prefix: prefix, release: make(chan struct{}), held: make(chan struct{}, 16)}
	fp.rules = append(fp.rules, r)
	var once sync.Once
	return r.held, func() {
		once.Do(func() {
			close(r.release)
			fp.remove(r)
		})
	}
}

func (fp *faultProxy) remove(r *proxyRule) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	for i, x := range fp.rules {
		if x == r {
			fp.rules = append(fp.rules[:i], fp.rules[i+1:]...)
			return
		}
	}
}

// clear drops every rule and lets held requests through.
func (fp *faultProxy) clear() {
	fp.mu.Lock()
	rules := fp.rules
	fp.rules = nil
	fp.mu.Unlock()
	for _, r := range rules {
		if r.release != nil {
			select {
			case <-r.release:
			default:
				close(r.release)
			}
		}
	}
}

// hitTimes returns when requests matching a rule's method and prefix arrived.
func (fp *faultProxy) hitTimes(method, prefix string) []time.Time {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return append([]time.Time(nil), fp.hits[method+" "+prefix]...)
}

func (fp *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fp.mu.Lock()
	var rule *proxyRule
	for _, x := range fp.rules {
		if r.Method == x.method && strings.HasPrefix(r.URL.Path, x.prefix) {
			rule = x
			fp.hits[x.method+" "+x.prefix] = append(fp.hits[x.method+" "+x.prefix], time.Now())
			break
		}
	}
	fp.mu.Unlock()
	if rule != nil && rule.status != 0 {
		http.Error(w, "injected fault", rule.status)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if rule != nil && rule.release != nil {
		select {
		case rule.held <- struct{}{}:
		default:
		}
		<-rule.release
	}
	// Forward on a context of its own: a held request still reaches OpenCode after its
	// sender died, as a request already on the wire would. OpenCode has a minute to answer
	// with headers; a stream (GET /event) then lasts until its receiver goes away.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	headers := time.AfterFunc(time.Minute, cancel)
	out, err := http.NewRequestWithContext(ctx, r.Method, r.URL.String(), strings.NewReader(string(body)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(out)
	headers.Stop()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	defer context.AfterFunc(r.Context(), cancel)()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	// Each chunk goes on at once, as from OpenCode itself: an event stream must not wait
	// in a buffer.
	rc := http.NewResponseController(w)
	rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			rc.Flush()
		}
		if err != nil {
			return
		}
	}
}
