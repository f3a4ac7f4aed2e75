package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/doce-dev/doce/store"
)

// usage is what a provider counted for one answer: prompt is all the input, cached or not;
// cacheRead and cacheWrite the cached input read and written.
type usage struct {
	prompt, output, cacheRead, cacheWrite int64
}

// input is the input that was not cached.
func (u usage) input() int64 { return max(u.prompt-u.cacheRead-u.cacheWrite, 0) }

// merge keeps the largest count of each kind: providers repeat or grow their counts as a
// stream goes on (Anthropic's input in message_start, output in each message_delta; Google's
// in every chunk), and none shrinks one.
func (u *usage) merge(o usage) {
	u.prompt, u.output = max(u.prompt, o.prompt), max(u.output, o.output)
	u.cacheRead, u.cacheWrite = max(u.cacheRead, o.cacheRead), max(u.cacheWrite, o.cacheWrite)
}

// providerUsage holds the usage fields of every provider doce's gateway serves.
type providerUsage struct {
	// OpenAI chat completions
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	// OpenAI responses, Anthropic messages
	InputTokens        int64 `json:"input_tokens"`
	OutputTokens       int64 `json:"output_tokens"`
	InputTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
}

func (p *providerUsage) usage() usage {
	switch {
	case p.PromptTokens > 0 || p.CompletionTokens > 0: // OpenAI chat: prompt includes cached
		var cached int64
		if p.PromptTokensDetails != nil {
			cached = p.PromptTokensDetails.CachedTokens
		}
		return usage{prompt: p.PromptTokens, output: p.CompletionTokens, cacheRead: cached}
	case p.InputTokensDetails != nil: // OpenAI responses: input includes cached
		return usage{prompt: p.InputTokens, output: p.OutputTokens, cacheRead: p.InputTokensDetails.CachedTokens}
	default: // Anthropic: input excludes cached
		return usage{prompt: p.InputTokens + p.CacheReadInputTokens + p.CacheCreationInputTokens, output: p.OutputTokens,
			cacheRead: p.CacheReadInputTokens, cacheWrite: p.CacheCreationInputTokens}
	}
}

// event is one JSON answer or stream event, decoded only for its usage.
type event struct {
	Usage   *providerUsage `json:"usage"`
	Message *struct {
		Usage *providerUsage `json:"usage"`
	} `json:"message"` // Anthropic's message_start
	Response *struct {
		Usage *providerUsage `json:"usage"`
	} `json:"response"` // OpenAI's response.completed
	UsageMetadata *struct {
		PromptTokenCount        int64 `json:"promptTokenCount"`
		CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
		ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
		CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
	} `json:"usageMetadata"` // Google
}

func (e *event) usage() usage {
	var u usage
	for _, p := range []*providerUsage{e.Usage, field(e.Message), field(e.Response)} {
		if p != nil {
			u.merge(p.usage())
		}
	}
	if m := e.UsageMetadata; m != nil {
		u.merge(usage{prompt: m.PromptTokenCount, output: m.CandidatesTokenCount + m.ThoughtsTokenCount, cacheRead: m.CachedContentTokenCount})
	}
	return u
}

func field(s *struct {
	Usage *providerUsage `json:"usage"`
}) *providerUsage {
	if s == nil {
		return nil
	}
	return s.Usage
}

// maxScan bounds what the meter keeps to find usage in: a JSON answer, or one stream line.
const maxScan = 8 << 20

// meter passes a provider's answer through untouched while reading the usage out of it: each
// `data:` line of a server-sent event stream, or the whole of a JSON answer.
type meter struct {
	io.ReadCloser
	sse  bool
	buf  []byte
	u    usage
	once sync.Once
	done func(usage)
}

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.ReadCloser.Read(p)
	m.scan(p[:n])
	if err == io.EOF {
		m.finish()
	}
	return n, err
}

func (m *meter) Close() error {
	err := m.ReadCloser.Close()
	m.finish()
	return err
}

func (m *meter) scan(b []byte) {
	if !m.sse {
		if len(m.buf)+len(b) <= maxScan {
			m.buf = append(m.buf, b...)
		}
		return
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(m.buf)+len(b) <= maxScan {
				m.buf = append(m.buf, b...)
			}
			return
		}
		line := b[:i]
		if len(m.buf) > 0 {
			line = append(m.buf, line...)
			m.buf = m.buf[:0]
		}
		m.line(line)
		b = b[i+1:]
	}
}

func (m *meter) line(l []byte) {
	data, ok := bytes.CutPrefix(bytes.TrimSpace(l), []byte("data:"))
	if !ok {
		return
	}
	m.parse(bytes.TrimSpace(data))
}

func (m *meter) parse(b []byte) {
	if len(b) == 0 || b[0] != '{' {
		return
	}
	var e event
	if json.Unmarshal(b, &e) == nil {
		m.u.merge(e.usage())
	}
}

func (m *meter) finish() {
	m.once.Do(func() {
		if m.sse {
			m.line(m.buf)
		} else {
			m.parse(bytes.TrimSpace(m.buf))
		}
		m.buf = nil
		m.done(m.u)
	})
}

// meterResponse reads usage out of the provider's answer as it passes, and records it when
// the answer ends.
func (g *Gateway) meterResponse(resp *http.Response) error {
	c := resp.Request.Context().Value(callKey{}).(*call)
	ctx := context.WithoutCancel(resp.Request.Context())
	status := resp.StatusCode
	resp.Body = &meter{
		ReadCloser: resp.Body,
		sse:        strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"),
		done:       func(u usage) { g.record(ctx, c, u, status) },
	}
	return nil
}

// record stores a request's usage and counts it, off the request's path: the agent sees the
// end of its answer without waiting for the database (or a first read of the catalog).
func (g *Gateway) record(ctx context.Context, c *call, u usage, status int) {
	latency := time.Since(c.start)
	g.pending.Add(1)
	go func() {
		defer g.pending.Done()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		p := c.grant.Project
		price, _ := g.price(ctx, p, c.provider, c.model)
		cost := price.Nanos(u.input(), u.output, u.cacheRead, u.cacheWrite)
		rec := &store.UsageRecord{
			UserID: p.OwnerUserID, ProjectID: p.ID, ProviderID: c.provider, ModelID: c.model, CreatedAt: c.start,
			InputTokens: u.input(), OutputTokens: u.output, CacheTokens: u.cacheRead + u.cacheWrite,
			CostNanos: cost, LatencyMS: latency.Milliseconds(), Status: status,
		}
		if err := g.Store.RecordUsage(ctx, rec); err != nil {
			g.Log.Error("gateway: unable to record usage", "project_id", p.ID, "error", err)
		}
		if m := g.Metrics; m != nil {
			m.GatewayRequests.WithLabelValues(c.provider, strconv.Itoa(status)).Inc()
			m.GatewayTokens.WithLabelValues(c.provider, "input").Add(float64(u.input()))
			m.GatewayTokens.WithLabelValues(c.provider, "output").Add(float64(u.output))
			m.GatewayTokens.WithLabelValues(c.provider, "cache").Add(float64(u.cacheRead + u.cacheWrite))
			m.GatewayCost.WithLabelValues(c.provider).Add(float64(cost) / 1e9)
		}
	}()
}

// Wait waits for the usage still being recorded, at shutdown.
func (g *Gateway) Wait() { g.pending.Wait() }
