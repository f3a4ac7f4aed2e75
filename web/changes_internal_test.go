package web

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/doce-dev/doce/opencode"
)

func TestReviewFlagsBinaryAndCutsLargePatches(t *testing.T) {
	big := "diff --git a/big.txt b/big.txt\n--- a/big.txt\n+++ b/big.txt\n@@ -0,0 +1 @@\n" + strings.Repeat("+line of text\n", maxPatchBytes/10)
	got := reviewOf([]opencode.FileDiff{
		{FileStat: opencode.FileStat{File: "a.txt", Additions: 1, Status: "added"}, Patch: "diff --git a/a.txt b/a.txt\n--- /dev/null\n+++ b/a.txt\n@@ -0,0 +1 @@\n+hi\n"},
		{FileStat: opencode.FileStat{File: "logo.png", Status: "added"}, Patch: "diff --git a/logo.png b/logo.png\nnew file mode 100644\nBinary files /dev/null and b/logo.png differ\n"},
		{FileStat: opencode.FileStat{File: "big.txt", Additions: maxPatchBytes / 10, Status: "added"}, Patch: big},
		{FileStat: opencode.FileStat{File: "huge.txt", Additions: 9, Status: "modified"}, Patch: "Index: huge.txt\n===\n--- huge.txt\n+++ huge.txt\n"},
		{FileStat: opencode.FileStat{File: "gone.txt", Deletions: 2}, Patch: "diff --git a/gone.txt b/gone.txt\n@@ -1,2 +0,0 @@\n-a\n-b\n"},
	})
	if len(got) != 5 {
		t.Fatalf("%d files", len(got))
	}
	if f := got[0]; f.Path != "a.txt" || f.Binary || f.Truncated || !strings.Contains(f.Patch, "+hi") {
		t.Errorf("text file: %+v", f)
	}
	if f := got[1]; !f.Binary || f.Patch != "" {
		t.Errorf("binary file: %+v", f)
	}
	if f := got[2]; !f.Truncated || len(f.Patch) > maxPatchBytes || !strings.HasSuffix(f.Patch, "\n") {
		t.Errorf("large patch: truncated %v, %d bytes", f.Truncated, len(f.Patch))
	}
	if f := got[3]; !f.Truncated {
		t.Errorf("a patch OpenCode left without hunks is not marked: %+v", f)
	}
	if f := got[4]; f.Status != "modified" || f.Truncated {
		t.Errorf("status defaults to modified: %+v", f)
	}
}

func TestMessageSummaryReadsBothShapes(t *testing.T) {
	var m opencode.Message
	user := `{"info":{"id":"msg_1","role":"user","summary":{"title":"Add a file","diffs":[{"file":"a.txt","before":"SECRET-BEFORE","after":"x","additions":1,"deletions":0,"status":"added"}]}},"parts":[]}`
	if err := jsonUnmarshal(user, &m); err != nil || m.Info.Summary == nil || len(m.Info.Summary.Diffs) != 1 || m.Info.Summary.Diffs[0].File != "a.txt" {
		t.Fatalf("user summary: %v %+v", err, m.Info.Summary)
	}
	if b := jsonMarshal(t, m); strings.Contains(b, "SECRET-BEFORE") {
		t.Errorf("a file's content passed the allow-list: %s", b)
	}
	var a opencode.Message
	if err := jsonUnmarshal(`{"info":{"id":"msg_2","role":"assistant","summary":true},"parts":[]}`, &a); err != nil || a.Info.Summary == nil || !a.Info.Summary.Compaction {
		t.Fatalf("assistant summary: %v %+v", err, a.Info.Summary)
	}
}

func TestHubHidesRevertedMessages(t *testing.T) {
	h, f := newTestHub(t, 0)
	ph := h.acquire("p1")
	defer ph.release()
	ctx := context.Background()
	if _, err := ph.conversation(ctx, "ses_a"); err != nil {
		t.Fatal(err)
	}
	f.events <- `{"id":"evt_1","type":"message.updated","properties":{"sessionID":"ses_a","info":{"id":"msg_2","sessionID":"ses_a","role":"user","time":{"created":2}}}}`
	f.events <- `{"id":"evt_2","type":"message.part.updated","properties":{"sessionID":"ses_a","part":{"id":"prt_2","sessionID":"ses_a","messageID":"msg_2","type":"text","text":"write the file"}}}`
	f.events <- `{"id":"evt_3","type":"message.updated","properties":{"sessionID":"ses_a","info":{"id":"msg_3","sessionID":"ses_a","role":"assistant","time":{"created":3}}}}`
	f.events <- `{"id":"evt_4","type":"session.updated","properties":{"sessionID":"ses_a","info":{"id":"ses_a","title":"t","time":{"created":1,"updated":4},"revert":{"messageID":"msg_2","snapshot":"abc123","diff":"SECRET-DIFF"}}}}`
	var conv *Conversation
	waitFor(t, "the revert", func() bool {
		conv, _ = ph.conversation(ctx, "ses_a")
		return conv.Revert != nil
	})
	if len(conv.Messages) != 1 || conv.Messages[0].Info.ID != "msg_1" {
		t.Errorf("messages after the revert: %+v", conv.Messages)
	}
	if r := conv.Revert; r.MessageID != "msg_2" || r.Messages != 2 || r.Prompt != "write the file" {
		t.Errorf("revert = %+v", r)
	}
	evs, _, _ := ph.since(0)
	for _, ev := range evs {
		if strings.Contains(string(ev.data), "SECRET-DIFF") || strings.Contains(string(ev.data), "abc123") {
			t.Errorf("%s passed the revert's snapshot or diff: %s", ev.typ, ev.data)
		}
	}
	f.events <- `{"id":"evt_5","type":"session.updated","properties":{"sessionID":"ses_a","info":{"id":"ses_a","title":"t","time":{"created":1,"updated":5}}}}`
	waitFor(t, "the restore", func() bool {
		conv, _ = ph.conversation(ctx, "ses_a")
		return conv.Revert == nil && len(conv.Messages) == 3
	})
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func jsonMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
