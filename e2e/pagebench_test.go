package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// BenchmarkPagesAt200 compares the projects page (a session lookup and three queries) on
// SQLite and on PostgreSQL at a steady 200 requests a second: one `doce serve` per engine, with
// 20 projects and a connection, driven in turns of pageRound (SQLite, PostgreSQL, SQLite, ...)
// so both see the same machine. Open loop: a request starts every 5 ms whatever the others
// do, at most pageMaxInFlight at once; late requests count as such. Bounded: pageRounds turns
// of pageRound each, 5 s per request. Run with `BENCH=PagesAt200 BENCHTIME=1x make bench`.
func BenchmarkPagesAt200(b *testing.B) {
	stack := requireStack(b)
	nodes := map[string]*pageTarget{}
	for _, d := range storetest.Dialects() {
		nodes[d] = newPageTarget(b, stack, d)
	}
	lat := map[string][]time.Duration{}
	failed := map[string]int{}
	b.ResetTimer()
	for range b.N {
		for round := range pageRounds * len(nodes) {
			d := storetest.Dialects()[round%len(nodes)]
			l, f := nodes[d].load(b, 200, pageRound)
			lat[d] = append(lat[d], l...)
			failed[d] += f
		}
	}
	b.StopTimer()
	for _, d := range storetest.Dialects() {
		slices.Sort(lat[d])
		p50, p99 := percentile(lat[d], 0.50), percentile(lat[d], 0.99)
		b.Logf("%-8s %d requests, %d failed or late: p50 %s, p99 %s, max %s", d, len(lat[d]), failed[d],
			p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), lat[d][len(lat[d])-1].Round(10*time.Microsecond))
		b.ReportMetric(float64(p99.Microseconds())/1000, d+"-p99-ms")
		b.ReportMetric(float64(p50.Microseconds())/1000, d+"-p50-ms")
		if failed[d] > 0 {
			b.Errorf("%s: %d requests failed or were dropped", d, failed[d])
		}
	}
}

const (
	pageRounds      = 3
	pageRound       = 5 * time.Second
	pageMaxInFlight = 400
)

type pageTarget struct {
	url string
	hc  *http.Client
}

// newPageTarget starts `doce serve` on a new database of dialect with an admin signed in,
// a connection and 20 projects.
func newPageTarget(b *testing.B, stack stackEnv, dialect string) *pageTarget {
	doce := newDoce(b, stack, fmt.Sprintf("bench-pages-%d", time.Now().UnixNano()), databaseEnv(b, dialect))
	doce.start(b, "serve")
	doce.waitHealthy(b)
	hc := newClient(b)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("setup: %v %v", resp, err)
	}
	st, err := store.Open(doce.Database)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	admin, err := st.UserByUsername(ctx, "admin")
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreateConnection(ctx, &store.ProviderConnection{UserID: admin.ID, ProviderID: "openai", AuthType: store.AuthAPI, APIKeyCiphertext: "vault:v1:bench", DisplayHint: "…ench"}); err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		p, _, err := st.CreateProject(ctx, &store.Project{OwnerUserID: admin.ID, Name: fmt.Sprintf("Project %d", i), Slug: fmt.Sprintf("p-%d", i), Prompt: "hello", ProviderID: "openai", ModelID: "gpt-4o"}, "")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.TransitionProject(ctx, p.ID, status.Live, status.Ready, ""); err != nil {
			b.Fatal(err)
		}
	}
	// Keep-alive connections as a browser's: the figure is doce's, not TCP handshakes'.
	hc.Client.Transport = &http.Transport{MaxIdleConnsPerHost: pageMaxInFlight}
	hc.Client.Timeout = 5 * time.Second
	t := &pageTarget{url: doce.URL + "/projects", hc: hc.Client}
	if lat, failed := t.load(b, 50, time.Second); failed > 0 || len(lat) == 0 { // warm up
		b.Fatalf("warm-up on %s: %d of %d failed", dialect, failed, len(lat)+failed)
	}
	return t
}

// load sends rate requests a second for d and returns the latencies of those that succeeded
// and the count of those that failed or could not start (pageMaxInFlight reached).
func (t *pageTarget) load(b *testing.B, rate int, d time.Duration) ([]time.Duration, int) {
	var (
		mu     sync.Mutex
		lat    []time.Duration
		failed int
		wg     sync.WaitGroup
	)
	slots := make(chan struct{}, pageMaxInFlight)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for range int(d.Seconds() * float64(rate)) {
		<-tick.C
		select {
		case slots <- struct{}{}:
		default:
			mu.Lock()
			failed++
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			start := time.Now()
			resp, err := t.hc.Get(t.url)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				lat = append(lat, took)
			} else {
				failed++
			}
		}()
	}
	wg.Wait()
	return lat, failed
}
