package preview

import (
	"strings"
	"testing"
	"time"
)

func TestSignerRefusesWhatItDidNotSignAsIs(t *testing.T) {
	s := signer{key: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Now()
	good := claims{Kind: kindOpen, ProjectID: "p1", UserID: "u1", SessionID: "s1", ID: "j1", Expires: now.Add(time.Minute).Unix()}
	tok := s.sign(good)
	if c, err := s.verify(tok, kindOpen, "p1", now); err != nil || c != good {
		t.Fatalf("a fresh token: %+v %v", c, err)
	}
	payload, sig, _ := strings.Cut(tok, ".")
	forged := good
	forged.ProjectID = "p2"
	forgedTok := strings.SplitN(s.sign(forged), ".", 2)[0] + "." + sig
	other := signer{key: []byte("another key, also 32 bytes long!")}
	for name, tc := range map[string]struct {
		tok, kind, project string
		at                 time.Time
	}{
		"expired":                  {tok, kindOpen, "p1", now.Add(time.Minute)},
		"for another project":      {tok, kindOpen, "p2", now},
		"a token used as a cookie": {tok, kindCookie, "p1", now},
		"payload changed":          {forgedTok, kindOpen, "p2", now},
		"signed with another key":  {other.sign(good), kindOpen, "p1", now},
		"no signature":             {payload, kindOpen, "p1", now},
		"garbage":                  {"a.b", kindOpen, "p1", now},
		"empty":                    {"", kindOpen, "p1", now},
	} {
		if _, err := s.verify(tc.tok, tc.kind, tc.project, tc.at); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPreviewHostRouting(t *testing.T) {
	p, err := New(nil, "http://preview.localhost:8080", "http://127.0.0.1:8080", "127.0.0.1", make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	id := "0193a7c2-5b1e-7cc0-9a6b-3f2d4e5f6a7b"
	for host, want := range map[string]struct {
		id string
		ok bool
	}{
		id + ".preview.localhost:8080":                          {id, true},
		strings.ToUpper(id) + ".PREVIEW.localhost":              {id, true},
		id + ".preview.localhost.":                              {id, true},
		"preview.localhost:8080":                                {"", true}, // the preview domain, no project
		"x.preview.localhost:8080":                              {"", true},
		"a." + id + ".preview.localhost":                        {"", true},
		"127.0.0.1:8080":                                        {"", false}, // doce
		"localhost:8080":                                        {"", false},
		id + ".preview.localhost.evil.example":                  {"", false},
		id + "-preview.localhost":                               {"", false},
		"0193a7c2-5b1e-7cc0-9a6b-3f2d4e5f6a7.preview.localhost": {"", true},
	} {
		got, ok := p.project(host)
		if got != want.id || ok != want.ok {
			t.Errorf("%s: got (%q, %v), want (%q, %v)", host, got, ok, want.id, want.ok)
		}
	}
	if u := p.URL(id); u != "http://"+id+".preview.localhost:8080" {
		t.Errorf("URL: %s", u)
	}
}
