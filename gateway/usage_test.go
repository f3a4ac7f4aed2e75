package gateway

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/doce-dev/doce/providers"
)

// Each provider's own usage fields, streamed or not, however the bytes are split.
func TestMeterReadsEachProvidersUsage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sse      bool
		body     string
		want     usage
		uncached int64
	}{
		{"openai chat stream", true, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n" +
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":100}}}\n\ndata: [DONE]\n\n",
			usage{prompt: 120, output: 7, cacheRead: 100}, 20},
		{"openai responses stream", true, "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":50,\"output_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":30}}}}\n\n",
			usage{prompt: 50, output: 9, cacheRead: 30}, 20},
		{"anthropic stream", true, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":40,\"cache_creation_input_tokens\":3,\"output_tokens\":1}}}\n\n" +
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":33}}\n\n",
			usage{prompt: 55, output: 33, cacheRead: 40, cacheWrite: 3}, 12},
		{"google stream", true, "data: {\"usageMetadata\":{\"promptTokenCount\":70,\"candidatesTokenCount\":2}}\r\n\r\n" +
			"data: {\"usageMetadata\":{\"promptTokenCount\":70,\"candidatesTokenCount\":11,\"thoughtsTokenCount\":4,\"cachedContentTokenCount\":60}}\r\n\r\n",
			usage{prompt: 70, output: 15, cacheRead: 60}, 10},
		{"json answer", false, `{"id":"x","usage":{"prompt_tokens":8,"completion_tokens":3}}`, usage{prompt: 8, output: 3}, 8},
		{"no usage", true, "data: {\"choices\":[]}\n\n", usage{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *usage
			m := &meter{ReadCloser: io.NopCloser(iotest.OneByteReader(strings.NewReader(tc.body))), sse: tc.sse, done: func(u usage) { got = &u }}
			b, err := io.ReadAll(m)
			if err != nil || string(b) != tc.body {
				t.Fatalf("the body did not pass unchanged: %v", err)
			}
			m.Close()
			if got == nil || *got != tc.want {
				t.Fatalf("usage %+v, want %+v", got, tc.want)
			}
			if in := got.input(); in != tc.uncached {
				t.Fatalf("uncached input %d, want %d", in, tc.uncached)
			}
		})
	}
}

func TestInspectAsksStreamsForUsage(t *testing.T) {
	chat, _ := providers.Gateway("openrouter")
	model, body := inspect(chat, "/p/openrouter/chat/completions", []byte(`{"model":"a/b","stream":true,"messages":[]}`))
	if model != "a/b" || !strings.Contains(string(body), `"stream_options":{"include_usage":true}`) {
		t.Fatalf("model %q, body %s", model, body)
	}
	in := `{"model":"a/b","stream":true,"stream_options":{"include_usage":true}}`
	if _, body := inspect(chat, "/p/openrouter/chat/completions", []byte(in)); string(body) != in {
		t.Fatalf("a body that asks already was rewritten: %s", body)
	}
	if _, body := inspect(chat, "/p/openrouter/chat/completions", []byte(`{"model":"a/b"}`)); string(body) != `{"model":"a/b"}` {
		t.Fatalf("a request that does not stream was rewritten: %s", body)
	}
	google, _ := providers.Gateway("google")
	if model, _ := inspect(google, "/p/google/models/gemini-2.5-pro:streamGenerateContent", []byte(`{"contents":[]}`)); model != "gemini-2.5-pro" {
		t.Fatalf("google model %q", model)
	}
}
