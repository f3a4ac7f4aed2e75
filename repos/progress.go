package repos

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// CloneProgress is what git said of a clone so far: the objects received of the total it
// announced, and the bytes received (git reports them once it measures its throughput, and at the
// end).
type CloneProgress struct {
	Objects, TotalObjects, Bytes int64
}

// receiving matches git's "Receiving objects:  45% (450/1000), 1.20 MiB | 2.00 MiB/s" line.
var receiving = regexp.MustCompile(`^Receiving objects:\s+\d+% \((\d+)/(\d+)\)(?:, ([0-9.]+) (bytes?|KiB|MiB|GiB|TiB))?`)

var units = map[string]float64{"byte": 1, "bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

// parseReceiving reads one line of git's progress; ok is false for any other line.
func parseReceiving(line string) (p CloneProgress, ok bool) {
	m := receiving.FindStringSubmatch(line)
	if m == nil {
		return CloneProgress{}, false
	}
	p.Objects, _ = strconv.ParseInt(m[1], 10, 64)
	p.TotalObjects, _ = strconv.ParseInt(m[2], 10, 64)
	if m[3] != "" {
		n, _ := strconv.ParseFloat(m[3], 64)
		p.Bytes = int64(n * units[m[4]])
	}
	return p, true
}

// progressWriter is git's stderr: its lines receiving objects (ended by \r or \n) go to report,
// with the bytes of the last one that had them when a later one has none; the other lines that
// are not redrawn in place are kept, up to keep's limit, for the error message.
type progressWriter struct {
	keep    *limitedWriter
	report  func(CloneProgress)
	partial []byte
	last    CloneProgress
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexAny(w.partial, "\r\n")
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]), w.partial[i] == '\n')
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > 8<<10 { // no line is that long: keep it, as a line, and go on
		w.line(string(w.partial), true)
		w.partial = w.partial[:0]
	}
	return len(p), nil
}

func (w *progressWriter) line(s string, ended bool) {
	if pr, ok := parseReceiving(s); ok {
		if pr.Bytes == 0 {
			pr.Bytes = w.last.Bytes
		}
		w.last = pr
		if w.report != nil {
			w.report(pr)
		}
		return
	}
	if !ended || strings.TrimSpace(s) == "" {
		return // a count redrawn in place (git's or the forge's): only its last state is kept
	}
	_, _ = w.keep.Write([]byte(s + "\n"))
}
