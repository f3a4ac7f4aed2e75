package providers

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	anthropic, _ := Lookup("anthropic")
	custom, _ := Lookup(CustomID)
	copilot, _ := Lookup("github-copilot")
	for _, tc := range []struct {
		p     Provider
		key   string
		field string // empty: valid
		msg   string
	}{
		{anthropic, "sk-ant-api03-abc", "", ""},
		{anthropic, "", "apiKey", "Enter the API key"},
		{anthropic, "sk-or-abc", "apiKey", `start with "sk-ant-"`},
		{anthropic, "sk-ant-a b", "apiKey", "spaces or control characters"},
		{anthropic, "sk-ant-a\x00", "apiKey", "control characters"},
		{custom, strings.Repeat("k", MaxKeyLen+1), "apiKey", "characters long"},
		{custom, "anything-goes", "", ""},
		{copilot, "ghu_abc", "providerId", "signing in (OAuth)"},
	} {
		err := tc.p.ValidateKey(tc.key)
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s %.20q: %v, want valid", tc.p.ID, tc.key, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Message, tc.msg) {
			t.Errorf("%s %.20q: %v, want %s error with %q", tc.p.ID, tc.key, err, tc.field, tc.msg)
		}
		if len(tc.key) > 8 && strings.Contains(err.Error(), tc.key) {
			t.Errorf("error repeats the key: %v", err)
		}
	}
}

func TestValidateBaseURL(t *testing.T) {
	if u, err := ValidateBaseURL(" http://llm.internal:8000/v1/ "); err != nil || u != "http://llm.internal:8000/v1" {
		t.Errorf("valid URL: %q %v", u, err)
	}
	for _, bad := range []string{"", "llm.internal", "ftp://x", "http://", "http://user:pw@host/v1"} {
		if _, err := ValidateBaseURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestValidateModelIDs(t *testing.T) {
	ids, err := ValidateModelIDs(" a, b ,a,, c")
	if err != nil || strings.Join(ids, "|") != "a|b|c" {
		t.Errorf("ids %v %v", ids, err)
	}
	if _, err := ValidateModelIDs(" , "); err == nil {
		t.Error("empty list accepted")
	}
}
