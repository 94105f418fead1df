package dispatch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// HistoryQuery is the content of a history_request.
type HistoryQuery struct {
	Output         bool   `json:"output"`
	Raw            bool   `json:"raw"`
	HistAccessType string `json:"hist_access_type"` // "tail", "range" or "search"
	Session        int    `json:"session"`          // range: 0 = this session, negative = relative
	Start          int    `json:"start"`            // range: first line
	Stop           int    `json:"stop"`             // range: line after the last (0 = to the end)
	N              int    `json:"n"`                // tail, search: the last n (0 = all for search)
	Pattern        string `json:"pattern"`          // search: glob (* and ?) over the whole input
	Unique         bool   `json:"unique"`           // tail, search: drop repeated inputs
}

type histEntry struct {
	Session int     `json:"session"`
	Line    int     `json:"line"`
	Input   string  `json:"input"`
	Output  *string `json:"output,omitempty"`
}

// history keeps executed inputs in memory and, optionally, appends them to a
// JSON-lines file so that a later kernel sees them under an older session number.
type history struct {
	mu      sync.Mutex
	entries []histEntry
	session int
	file    *os.File
	logf    func(string, ...any)
}

func newHistory(path string, logf func(string, ...any)) *history {
	h := &history{session: 1, logf: logf}
	if path == "" {
		return h
	}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
		for sc.Scan() {
			var e histEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				logf("dispatch: history file %s: skipping a bad line: %v", path, err)
				continue
			}
			h.entries = append(h.entries, e)
			if e.Session >= h.session {
				h.session = e.Session + 1
			}
		}
		f.Close()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		logf("dispatch: history file: %v (keeping history in memory only)", err)
		return h
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		logf("dispatch: history file: %v (keeping history in memory only)", err)
		return h
	}
	h.file = f
	return h
}

func (h *history) add(line int, input string, output *string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := histEntry{Session: h.session, Line: line, Input: input, Output: output}
	h.entries = append(h.entries, e)
	if h.file != nil {
		b, _ := json.Marshal(e)
		if _, err := h.file.Write(append(b, '\n')); err != nil {
			h.logf("dispatch: history file: %v", err)
		}
	}
}

func (h *history) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.file == nil {
		return nil
	}
	err := h.file.Close()
	h.file = nil
	if err != nil {
		return fmt.Errorf("dispatch: history file: %w", err)
	}
	return nil
}

// query answers q with [session, line, input] triples, or [session, line,
// [input, output]] when q.Output is set.
func (h *history) query(q HistoryQuery) [][]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var sel []histEntry
	switch q.HistAccessType {
	case "tail":
		sel = lastN(uniq(h.entries, q.Unique), q.N)
	case "range":
		s := q.Session
		if s <= 0 {
			s += h.session
		}
		for _, e := range h.entries {
			if e.Session == s && e.Line >= q.Start && (q.Stop <= 0 || e.Line < q.Stop) {
				sel = append(sel, e)
			}
		}
	case "search":
		re := globRegexp(q.Pattern)
		var match []histEntry
		for _, e := range h.entries {
			if re.MatchString(e.Input) {
				match = append(match, e)
			}
		}
		sel = lastN(uniq(match, q.Unique), q.N)
	}
	out := make([][]any, 0, len(sel))
	for _, e := range sel {
		var in any = e.Input
		if q.Output {
			var o any
			if e.Output != nil {
				o = *e.Output
			}
			in = []any{e.Input, o}
		}
		out = append(out, []any{e.Session, e.Line, in})
	}
	return out
}

func lastN(es []histEntry, n int) []histEntry {
	if n > 0 && len(es) > n {
		return es[len(es)-n:]
	}
	return es
}

// uniq keeps the last occurrence of each input, in order.
func uniq(es []histEntry, on bool) []histEntry {
	if !on {
		return es
	}
	seen := map[string]bool{}
	var rev []histEntry
	for i := len(es) - 1; i >= 0; i-- {
		if !seen[es[i].Input] {
			seen[es[i].Input] = true
			rev = append(rev, es[i])
		}
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

// globRegexp compiles an SQLite-GLOB-like pattern (as IPython's history search
// uses): * any text, ? one character, everything else literal. An empty
// pattern matches everything.
func globRegexp(p string) *regexp.Regexp {
	if p == "" {
		p = "*"
	}
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String())
}
