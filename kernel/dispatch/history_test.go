package dispatch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func inputs(h [][]any) string {
	var s []string
	for _, e := range h {
		switch in := e[2].(type) {
		case string:
			s = append(s, in)
		case []any:
			s = append(s, in[0].(string))
		}
	}
	return strings.Join(s, ";")
}

func TestHistoryFilePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hist.jsonl")
	out := "2"
	h := newHistory(path, t.Logf)
	h.add(1, "1+1", &out)
	h.add(2, "x := 3", nil)
	if err := h.close(); err != nil {
		t.Fatal(err)
	}
	h2 := newHistory(path, t.Logf)
	defer h2.close()
	if h2.session != 2 {
		t.Fatalf("second kernel session %d, want 2", h2.session)
	}
	h2.add(1, "y := 4", nil)
	tests := []struct {
		q    HistoryQuery
		want string
	}{
		{HistoryQuery{HistAccessType: "tail", N: 10}, "1+1;x := 3;y := 4"},
		{HistoryQuery{HistAccessType: "range", Session: 0, Start: 1}, "y := 4"},
		{HistoryQuery{HistAccessType: "range", Session: -1, Start: 1, Stop: 2}, "1+1"},
		{HistoryQuery{HistAccessType: "range", Session: 1, Start: 2}, "x := 3"},
		{HistoryQuery{HistAccessType: "search", Pattern: "*:=*"}, "x := 3;y := 4"},
		{HistoryQuery{HistAccessType: "search", Pattern: "?+?"}, "1+1"},
		{HistoryQuery{HistAccessType: "search", Pattern: "1+1*", Output: true}, "1+1"},
		{HistoryQuery{HistAccessType: "bogus"}, ""},
	}
	for _, tc := range tests {
		got := h2.query(tc.q)
		if inputs(got) != tc.want {
			t.Errorf("%+v: %q, want %q", tc.q, inputs(got), tc.want)
		}
		if tc.q.Output && len(got) == 1 {
			pair := got[0][2].([]any)
			if pair[1] != "2" {
				t.Errorf("output of 1+1 = %v", pair[1])
			}
		}
	}
}

func TestHistoryBadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hist.jsonl")
	os.WriteFile(path, []byte("{not json\n{\"session\":4,\"line\":1,\"input\":\"a\"}\n"), 0o600)
	var logs []string
	h := newHistory(path, func(f string, a ...any) { logs = append(logs, f) })
	defer h.close()
	h3 := newHistory(filepath.Join(dir, "new", "dir", "h.jsonl"), t.Logf)
	if h3.file == nil {
		t.Error("history file's directory not created")
	}
	h3.close()
	if h.session != 5 || len(h.entries) != 1 || len(logs) != 1 {
		t.Fatalf("session %d entries %d logs %v", h.session, len(h.entries), logs)
	}
	// An unwritable path keeps history in memory and says so.
	logs = nil
	h2 := newHistory(filepath.Join(path, "under-a-file", "h.jsonl"), func(f string, a ...any) { logs = append(logs, f) })
	h2.add(1, "b", nil)
	if len(logs) != 1 || inputs(h2.query(HistoryQuery{HistAccessType: "tail"})) != "b" {
		t.Fatalf("logs %v", logs)
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"*", "anything\nmultiline", true},
		{"", "x", true},
		{"a?c", "abc", true},
		{"a?c", "abbc", false},
		{"a.c", "abc", false},
		{"fmt.*", "fmt.Println(1)", true},
		{"(x", "(x", true},
	}
	for _, tc := range tests {
		if got := globRegexp(tc.pat).MatchString(tc.s); got != tc.want {
			t.Errorf("glob %q on %q = %v", tc.pat, tc.s, got)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"héllo", 2, "h"},
		{"héllo", 3, "hé"},
		{"abc", 5, "abc"},
		{"abc", 0, ""},
		{"日本", 4, "日"},
	}
	for _, tc := range tests {
		if got := validPrefix(tc.s, tc.n); got != tc.want {
			t.Errorf("validPrefix(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestCursorOrEnd(t *testing.T) {
	p := func(i int) *int { return &i }
	for _, tc := range []struct {
		code string
		pos  *int
		want int
	}{{"héllo", nil, 5}, {"héllo", p(9), 5}, {"abc", p(-1), 0}, {"abc", p(2), 2}} {
		if got := cursorOrEnd(tc.code, tc.pos); got != tc.want {
			t.Errorf("cursorOrEnd(%q) = %d, want %d", tc.code, got, tc.want)
		}
	}
}
