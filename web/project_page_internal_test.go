package web

import (
	"bytes"
	"strings"
	"testing"

	"github.com/doce-dev/doce/hub"
	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/projects"
)

// The page of a ready project renders the conversation it was given, as text.
func TestProjectPageRendersConversation(t *testing.T) {
	s := &Server{}
	if err := s.parseTemplates(); err != nil {
		t.Fatal(err)
	}
	conv := &hub.Conversation{SessionID: "ses_1", Messages: []opencode.Message{
		{Info: opencode.MessageInfo{ID: "msg_1", Role: "user"}, Parts: []opencode.Part{{ID: "prt_1", Type: "text", Text: "Build it"}}},
		{Info: opencode.MessageInfo{ID: "msg_2", Role: "assistant"}, Parts: []opencode.Part{
			{ID: "prt_2", Type: "tool", Tool: "write", State: &opencode.ToolState{Status: "completed", Title: "hello.txt"}},
			{ID: "prt_3", Type: "text", Text: "Done <script>alert(1)</script>"},
		}},
	}}
	var buf bytes.Buffer
	err := s.pages["project.html"].Execute(&buf, map[string]any{
		"Title": "p", "Path": "/projects/p1", "Conversation": conv,
		"Project": ProjectView{ID: "p1", Name: "p", Status: "ready", Prompt: "Build it"},
	})
	if err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{`<li class="msg assistant" data-server>`, "write: completed — hello.txt", "Done &lt;script&gt;",
		// The same markup, empty, for the script to copy.
		`<template id="message-template"><li class="msg"><h3 class="who"></h3><div class="parts"></div><p class="error" hidden></p></li></template>`} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(html, "<script>alert(1)") || strings.Contains(html, "data-first-prompt") {
		t.Error("the agent's text reached the page as HTML, or the placeholder prompt shows too")
	}
}

// The page of a project made from a repository has a Git tab to push it; others have none.
func TestProjectPageGitTab(t *testing.T) {
	s := &Server{}
	if err := s.parseTemplates(); err != nil {
		t.Fatal(err)
	}
	for _, repo := range []*projects.Repository{{URL: "https://git.example.com/ada/app.git", Ref: "dev"}, nil} {
		var buf bytes.Buffer
		err := s.pages["project.html"].Execute(&buf, map[string]any{"Title": "p", "Path": "/projects/p1",
			"Project": ProjectView{ID: "p1", Name: "Shop", Status: "ready", Repository: repo}})
		if err != nil {
			t.Fatal(err)
		}
		html := buf.String()
		has := strings.Contains(html, `id="tab-git"`) && strings.Contains(html, `<form id="git-push"`) &&
			strings.Contains(html, "into <code>dev</code>") && strings.Contains(html, `placeholder="Work on Shop made in doce"`)
		if has != (repo != nil) || (repo == nil && strings.Contains(html, "git-push")) {
			t.Errorf("repository %v: Git tab %v\n%s", repo, has, html)
		}
	}
}

// TestImportReceived words the clone's progress as the setup page shows it.
func TestImportReceived(t *testing.T) {
	for _, tc := range []struct {
		v    ImportView
		want string
	}{
		{ImportView{ReceivedObjects: 450, TotalObjects: 1000, ReceivedBytes: 3 << 19}, "receiving: 450 of 1000 objects, 1.50 MiB"},
		{ImportView{ReceivedObjects: 7, TotalObjects: 7, ReceivedBytes: 215}, "received 7 objects, 215 bytes"},
		{ImportView{ReceivedObjects: 9, TotalObjects: 9, ReceivedBytes: 2304}, "received 9 objects, 2.25 KiB"},
		{ImportView{ReceivedObjects: 9, TotalObjects: 9, ReceivedBytes: 5 << 30}, "received 9 objects, 5.00 GiB"},
	} {
		if got := tc.v.Received(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.v, got, tc.want)
		}
	}
}
