package repos

import (
	"strings"
	"testing"
)

// TestProgressWriter feeds git's progress as it writes it, in pieces: the receiving lines are
// reported with their counts and bytes, and only the finished lines that are not progress are
// kept for an error message.
func TestProgressWriter(t *testing.T) {
	out := "Cloning into 'app'...\n" +
		"remote: Enumerating objects: 7, done.\n" +
		"remote: Counting objects:  14% (1/7)\rremote: Counting objects: 100% (7/7), done.\n" +
		"Receiving objects:  14% (1/7)\rReceiving objects:  57% (4/7), 1.50 MiB | 3.00 MiB/s\r" +
		"Receiving objects:  85% (6/7)\rReceiving objects: 100% (7/7), 2.25 KiB | 2.25 MiB/s, done.\n" +
		"Resolving deltas:  50% (1/2)\rResolving deltas: 100% (2/2), done.\n"
	var got []CloneProgress
	var kept strings.Builder
	w := &progressWriter{keep: &limitedWriter{w: &kept, n: 1 << 10}, report: func(p CloneProgress) { got = append(got, p) }}
	for i := 0; i < len(out); i += 7 {
		w.Write([]byte(out[i:min(i+7, len(out))]))
	}
	want := []CloneProgress{{1, 7, 0}, {4, 7, 3 << 19}, {6, 7, 3 << 19}, {7, 7, 2304}}
	if len(got) != len(want) {
		t.Fatalf("reports %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("report %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if k := kept.String(); k != "Cloning into 'app'...\nremote: Enumerating objects: 7, done.\nremote: Counting objects: 100% (7/7), done.\nResolving deltas: 100% (2/2), done.\n" {
		t.Errorf("kept:\n%s", k)
	}
	if p, ok := parseReceiving("Receiving objects: 100% (3/3), 215 bytes | 215.00 KiB/s, done."); !ok || p != (CloneProgress{3, 3, 215}) {
		t.Errorf("bytes: %+v %v", p, ok)
	}
}
