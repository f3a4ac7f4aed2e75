package web

import (
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

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func jsonMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
