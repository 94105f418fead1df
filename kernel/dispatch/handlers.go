package dispatch

import (
	"encoding/json"
	"runtime"
	"strings"

	"github.com/detlab/detlab/kernel/wire"
)

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }

// LanguageInfo is kernel_info's language_info.
func LanguageInfo() map[string]any {
	return map[string]any{
		"name":            "go",
		"version":         strings.TrimPrefix(runtime.Version(), "go"),
		"mimetype":        "text/x-go",
		"file_extension":  ".go",
		"pygments_lexer":  "go",
		"codemirror_mode": "go",
	}
}

func (d *Dispatcher) kernelInfo() map[string]any {
	return map[string]any{
		"status":                 "ok",
		"protocol_version":       wire.ProtocolVersion,
		"implementation":         "detlab",
		"implementation_version": d.opts.Version,
		"language_info":          LanguageInfo(),
		"banner":                 d.eng.Banner(),
		"debugger":               false,
		"help_links": []map[string]string{
			{"text": "Go documentation", "url": "https://go.dev/doc/"},
			{"text": "Go standard library", "url": "https://pkg.go.dev/std"},
			{"text": "detlab", "url": "https://github.com/detlab/detlab"},
		},
	}
}

func (d *Dispatcher) complete(m *wire.Message) {
	var c struct {
		Code      string `json:"code"`
		CursorPos *int   `json:"cursor_pos"`
	}
	if err := m.DecodeContent(&c); err != nil {
		d.reply(wire.Shell, m, "complete_reply", requestError(err))
		return
	}
	cursor := cursorOrEnd(c.Code, c.CursorPos)
	matches, start, end := d.eng.Complete(c.Code, cursor)
	if matches == nil {
		matches = []string{}
		start, end = cursor, cursor
	}
	d.reply(wire.Shell, m, "complete_reply", map[string]any{
		"status": "ok", "matches": matches, "cursor_start": start, "cursor_end": end, "metadata": map[string]any{},
	})
}

func (d *Dispatcher) inspect(m *wire.Message) {
	var c struct {
		Code        string `json:"code"`
		CursorPos   *int   `json:"cursor_pos"`
		DetailLevel int    `json:"detail_level"`
	}
	if err := m.DecodeContent(&c); err != nil {
		d.reply(wire.Shell, m, "inspect_reply", requestError(err))
		return
	}
	text, found := d.eng.Inspect(c.Code, cursorOrEnd(c.Code, c.CursorPos), c.DetailLevel)
	data := map[string]any{}
	if found {
		data["text/plain"] = text
	}
	d.reply(wire.Shell, m, "inspect_reply", map[string]any{
		"status": "ok", "found": found, "data": data, "metadata": map[string]any{},
	})
}

func (d *Dispatcher) isComplete(m *wire.Message) {
	var c struct {
		Code string `json:"code"`
	}
	if err := m.DecodeContent(&c); err != nil {
		d.reply(wire.Shell, m, "is_complete_reply", map[string]any{"status": "unknown"})
		return
	}
	status, indent := d.eng.IsComplete(c.Code)
	content := map[string]any{"status": status}
	if status == "incomplete" {
		content["indent"] = indent
	}
	d.reply(wire.Shell, m, "is_complete_reply", content)
}

func (d *Dispatcher) history(m *wire.Message) {
	var q HistoryQuery
	if err := m.DecodeContent(&q); err != nil {
		d.reply(wire.Shell, m, "history_reply", requestError(err))
		return
	}
	d.reply(wire.Shell, m, "history_reply", map[string]any{"status": "ok", "history": d.hist.query(q)})
}

// cursorOrEnd returns the cursor position in code points, the end of code when
// the request has none.
func cursorOrEnd(code string, pos *int) int {
	n := len([]rune(code))
	if pos == nil || *pos > n {
		return n
	}
	if *pos < 0 {
		return 0
	}
	return *pos
}
