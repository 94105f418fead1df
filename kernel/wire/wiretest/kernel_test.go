package wiretest_test

import (
	"context"
	"io"
	"log"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/detlab/detlab/kernel/dispatch"
	"github.com/detlab/detlab/kernel/display"
	"github.com/detlab/detlab/kernel/session"
	"github.com/detlab/detlab/kernel/wire"
	"github.com/detlab/detlab/kernel/wire/wiretest"
)

// fakeEngine interprets a tiny command language so that the protocol can be
// tested without the Go interpreter.
type fakeEngine struct {
	mu      sync.Mutex
	running chan struct{} // closed copy signalled when "sleep" starts
}

func (e *fakeEngine) Execute(ctx context.Context, code string, out session.Output) (*display.Data, error) {
	switch {
	case code == "1+1":
		return &display.Data{MIME: map[string]any{"text/plain": "2"}}, nil
	case code == "nothing":
		return nil, nil
	case strings.HasPrefix(code, "print:"):
		for _, part := range strings.Split(strings.TrimPrefix(code, "print:"), "|") {
			out.Stream("stdout", part)
		}
		return nil, nil
	case strings.HasPrefix(code, "stderr:"):
		out.Stream("stderr", strings.TrimPrefix(code, "stderr:"))
		return nil, nil
	case strings.HasPrefix(code, "spam:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(code, "spam:"))
		for i := 0; i < n; i++ {
			out.Stream("stdout", "x")
		}
		return nil, nil
	case code == "sleep":
		e.mu.Lock()
		if e.running != nil {
			close(e.running)
			e.running = nil
		}
		e.mu.Unlock()
		<-ctx.Done()
		return nil, &session.ExecError{Name: "Interrupted", Value: "cell interrupted", Traceback: []string{"Interrupted"}}
	case code == "slowfail":
		time.Sleep(300 * time.Millisecond)
		fallthrough
	case code == "fail":
		return nil, &session.ExecError{Name: "Err", Value: "boom", Traceback: []string{"cell:1: boom"}}
	case code == "panic":
		panic("engine bug")
	case code == "display":
		out.Stream("stdout", "before")
		out.Display(display.Data{MIME: map[string]any{"text/html": "<b>x</b>", "text/plain": "x"}, DisplayID: "d1"})
		out.Update(display.Data{MIME: map[string]any{"text/plain": "y"}, DisplayID: "d1"})
		out.Clear(true)
		return nil, nil
	case code == "input":
		s, err := out.Input("name? ", false)
		if err != nil {
			return nil, &session.ExecError{Name: "InputError", Value: err.Error()}
		}
		return &display.Data{MIME: map[string]any{"text/plain": "hello " + s}}, nil
	}
	return nil, &session.ExecError{Name: "SyntaxError", Value: "unknown fake code " + code}
}

func (e *fakeEngine) Complete(code string, cursor int) ([]string, int, int) {
	return []string{"Println", "Printf"}, cursor - 2, cursor
}
func (e *fakeEngine) Inspect(code string, cursor, detail int) (string, bool) {
	return "func Println(a ...any) (n int, err error)", strings.Contains(code, "Println")
}
func (e *fakeEngine) IsComplete(code string) (string, string) {
	if strings.HasSuffix(code, "{") {
		return "incomplete", "\t"
	}
	return "complete", ""
}
func (e *fakeEngine) Banner() string { return "fake engine" }

type kernel struct {
	c    *wiretest.Client
	eng  *fakeEngine
	done chan bool // receives Run's restart flag
	logs *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

const timeout = 10 * time.Second

func start(t testing.TB, opts dispatch.Options) *kernel {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuf{}
	logger := log.New(io.MultiWriter(logs), "", 0)
	info := wire.ConnectionInfo{Transport: "tcp", IP: "127.0.0.1", Key: wire.NewID(), SignatureScheme: "hmac-sha256"}
	srv, err := wire.Listen(ctx, info, logger)
	if err != nil {
		t.Fatal(err)
	}
	eng := &fakeEngine{}
	opts.Logger = logger
	d := dispatch.New(srv, eng, opts)
	k := &kernel{eng: eng, done: make(chan bool, 1), logs: logs}
	go func() {
		restart, _ := d.Run(ctx)
		k.done <- restart
	}()
	c, err := wiretest.Dial(ctx, srv.Info())
	if err != nil {
		t.Fatal(err)
	}
	k.c = c
	t.Cleanup(func() {
		c.Close()
		cancel()
		srv.Close()
	})
	if err := c.WaitReady(timeout); err != nil {
		t.Fatal(err)
	}
	return k
}

func types(ms []*wire.Message) []string {
	var ts []string
	for _, m := range ms {
		t := m.Type()
		if t == "status" {
			t += ":" + wiretest.State(m)
		}
		ts = append(ts, t)
	}
	return ts
}

func TestKernelInfoAndHeartbeat(t *testing.T) {
	k := start(t, dispatch.Options{Version: "1.2.3"})
	req, err := k.c.Request(wire.Shell, "kernel_info_request", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := k.c.Reply(wire.Shell, req, timeout)
	if err != nil {
		t.Fatal(err)
	}
	c := wiretest.Content(rep)
	li, _ := c["language_info"].(map[string]any)
	if rep.Type() != "kernel_info_reply" || c["protocol_version"] != "5.3" || c["implementation"] != "detlab" ||
		c["implementation_version"] != "1.2.3" || c["banner"] != "fake engine" || li["name"] != "go" ||
		li["mimetype"] != "text/x-go" || li["file_extension"] != ".go" || li["codemirror_mode"] != "go" ||
		li["pygments_lexer"] != "go" || li["version"] == "" {
		t.Fatalf("kernel_info_reply %s", rep.Content)
	}
	if links, _ := c["help_links"].([]any); len(links) == 0 {
		t.Fatalf("no help_links")
	}
	outs, err := k.c.Outputs(req, timeout)
	if err != nil || strings.Join(types(outs), ",") != "status:busy,status:idle" {
		t.Fatalf("iopub %v, %v", types(outs), err)
	}
	// kernel_info on control too.
	req, _ = k.c.Request(wire.Control, "kernel_info_request", map[string]any{})
	if _, err := k.c.Reply(wire.Control, req, timeout); err != nil {
		t.Fatal(err)
	}
	if err := k.c.Ping(timeout); err != nil {
		t.Fatal(err)
	}
}

func TestExecute(t *testing.T) {
	k := start(t, dispatch.Options{FlushInterval: time.Second})
	tests := []struct {
		code      string
		opts      map[string]any
		wantCount float64
		wantTypes string
		status    string
	}{
		{"1+1", nil, 1, "status:busy,execute_input,execute_result,status:idle", "ok"},
		{"print:a|b|c", nil, 2, "status:busy,execute_input,stream,status:idle", "ok"},
		{"1+1", map[string]any{"silent": true}, 2, "status:busy,status:idle", "ok"},
		{"1+1", map[string]any{"store_history": false}, 2, "status:busy,execute_input,execute_result,status:idle", "ok"},
		{"display", nil, 3, "status:busy,execute_input,stream,display_data,update_display_data,clear_output,status:idle", "ok"},
		{"fail", map[string]any{"stop_on_error": false}, 4, "status:busy,execute_input,error,status:idle", "error"},
		{"panic", map[string]any{"stop_on_error": false}, 5, "status:busy,execute_input,error,status:idle", "error"},
		{"nothing", nil, 6, "status:busy,execute_input,status:idle", "ok"},
		{"input", nil, 7, "status:busy,execute_input,error,status:idle", "error"}, // allow_stdin false
	}
	for _, tc := range tests {
		rep, outs, err := k.c.Execute(tc.code, tc.opts, timeout)
		if err != nil {
			t.Fatalf("%s: %v", tc.code, err)
		}
		c := wiretest.Content(rep)
		if c["status"] != tc.status || c["execution_count"] != tc.wantCount {
			t.Errorf("%s %v: reply %s, want status %s count %v", tc.code, tc.opts, rep.Content, tc.status, tc.wantCount)
		}
		if got := strings.Join(types(outs), ","); got != tc.wantTypes {
			t.Errorf("%s %v: iopub %s, want %s", tc.code, tc.opts, got, tc.wantTypes)
		}
		for _, m := range outs {
			mc := wiretest.Content(m)
			switch m.Type() {
			case "execute_input":
				if mc["code"] != tc.code || mc["execution_count"] != tc.wantCount {
					t.Errorf("%s: execute_input %s", tc.code, m.Content)
				}
			case "stream":
				if tc.code == "print:a|b|c" && (mc["text"] != "abc" || mc["name"] != "stdout") {
					t.Errorf("stream not batched: %s", m.Content)
				}
			case "execute_result":
				if mc["execution_count"] != tc.wantCount || mc["data"].(map[string]any)["text/plain"] != "2" {
					t.Errorf("execute_result %s", m.Content)
				}
			case "display_data", "update_display_data":
				if tr, _ := mc["transient"].(map[string]any); tr["display_id"] != "d1" {
					t.Errorf("%s without display id: %s", m.Type(), m.Content)
				}
			case "error":
				if tc.code == "fail" && (mc["ename"] != "Err" || mc["evalue"] != "boom") {
					t.Errorf("error %s", m.Content)
				}
				if tb, _ := mc["traceback"].([]any); len(tb) == 0 {
					t.Errorf("error without traceback: %s", m.Content)
				}
			}
		}
	}
}

func TestStopOnErrorAbortsQueue(t *testing.T) {
	k := start(t, dispatch.Options{})
	var reqs []*wire.Message
	for _, code := range []string{"slowfail", "1+1", "1+1"} {
		req, err := k.c.Request(wire.Shell, "execute_request", map[string]any{"code": code, "silent": false, "store_history": true, "stop_on_error": true})
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req)
	}
	want := []string{"error", "aborted", "aborted"}
	for i, req := range reqs {
		rep, err := k.c.Reply(wire.Shell, req, timeout)
		if err != nil {
			t.Fatal(err)
		}
		if s := wiretest.Content(rep)["status"]; s != want[i] {
			t.Errorf("reply %d: status %v, want %s", i, s, want[i])
		}
	}
	// The kernel runs new requests after the abort.
	rep, _, err := k.c.Execute("1+1", nil, timeout)
	if err != nil || wiretest.Content(rep)["status"] != "ok" {
		t.Fatalf("after abort: %v %v", rep, err)
	}
}

func TestInterruptWhileRunning(t *testing.T) {
	k := start(t, dispatch.Options{})
	running := make(chan struct{})
	k.eng.mu.Lock()
	k.eng.running = running
	k.eng.mu.Unlock()
	req, err := k.c.Request(wire.Shell, "execute_request", map[string]any{"code": "sleep", "stop_on_error": false})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-running:
	case <-time.After(timeout):
		t.Fatal("cell never started")
	}
	ireq, _ := k.c.Request(wire.Control, "interrupt_request", map[string]any{})
	irep, err := k.c.Reply(wire.Control, ireq, timeout)
	if err != nil || wiretest.Content(irep)["status"] != "ok" {
		t.Fatalf("interrupt_reply %v %v", irep, err)
	}
	rep, err := k.c.Reply(wire.Shell, req, timeout)
	if err != nil {
		t.Fatal(err)
	}
	if c := wiretest.Content(rep); c["status"] != "error" || c["ename"] != "Interrupted" {
		t.Fatalf("execute_reply after interrupt %s", rep.Content)
	}
	if rep, _, err := k.c.Execute("1+1", nil, timeout); err != nil || wiretest.Content(rep)["status"] != "ok" {
		t.Fatalf("after interrupt: %v", err)
	}
}

func TestShutdownWhileRunning(t *testing.T) {
	for _, restart := range []bool{false, true} {
		k := start(t, dispatch.Options{})
		running := make(chan struct{})
		k.eng.mu.Lock()
		k.eng.running = running
		k.eng.mu.Unlock()
		if _, err := k.c.Request(wire.Shell, "execute_request", map[string]any{"code": "sleep"}); err != nil {
			t.Fatal(err)
		}
		<-running
		req, _ := k.c.Request(wire.Control, "shutdown_request", map[string]any{"restart": restart})
		rep, err := k.c.Reply(wire.Control, req, timeout)
		if err != nil {
			t.Fatal(err)
		}
		if c := wiretest.Content(rep); c["status"] != "ok" || c["restart"] != restart {
			t.Fatalf("shutdown_reply %s", rep.Content)
		}
		select {
		case got := <-k.done:
			if got != restart {
				t.Fatalf("Run restart = %v, want %v", got, restart)
			}
		case <-time.After(timeout):
			t.Fatal("Run did not return after shutdown")
		}
	}
}

func TestBadInputKeepsServing(t *testing.T) {
	k := start(t, dispatch.Options{})
	m, _ := wire.NewMessage(k.c.Session, "execute_request", nil, map[string]any{"code": "1+1"})
	good := wire.Encode(m, k.c.Signer())
	wrongSig := append([][]byte{}, good...)
	wrongSig[1] = []byte(strings.Repeat("0", 64))
	noSig := append([][]byte{}, good...)
	noSig[1] = []byte{}
	bad := [][]byte{[]byte(wire.Delimiter), nil, []byte("{"), []byte("{}"), []byte("{}"), []byte("{")}
	bad[1] = k.c.Signer().Sign(bad[2:6]...)
	for _, fs := range [][][]byte{wrongSig, noSig, bad, {[]byte("garbage")}} {
		if err := k.c.SendFrames(wire.Shell, fs); err != nil {
			t.Fatal(err)
		}
	}
	unknown, _ := k.c.Request(wire.Shell, "frobnicate_request", map[string]any{})
	outs, err := k.c.Outputs(unknown, timeout)
	if err != nil || strings.Join(types(outs), ",") != "status:busy,status:idle" {
		t.Fatalf("unknown type iopub %v %v", types(outs), err)
	}
	rep, _, err := k.c.Execute("1+1", nil, timeout)
	if err != nil {
		t.Fatal(err)
	}
	// The wrongly signed execute_request must not have run: this is execution 1.
	if c := wiretest.Content(rep); c["execution_count"] != 1.0 {
		t.Fatalf("a badly signed request was executed: %s", rep.Content)
	}
	logs := k.logs.String()
	for _, want := range []string{"bad or missing signature", "malformed", "frobnicate_request"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestInputRequest(t *testing.T) {
	k := start(t, dispatch.Options{})
	req, _ := k.c.Request(wire.Shell, "execute_request", map[string]any{"code": "input", "allow_stdin": true})
	ir, err := k.c.Recv(wire.Stdin, timeout)
	if err != nil {
		t.Fatal(err)
	}
	if ir.Type() != "input_request" || wiretest.Content(ir)["prompt"] != "name? " || wiretest.ParentID(ir) != req.Header.MsgID {
		t.Fatalf("input_request %s", ir.Content)
	}
	reply, _ := wire.NewMessage(k.c.Session, "input_reply", ir, map[string]any{"value": "gopher"})
	if err := k.c.SendMessage(wire.Stdin, reply); err != nil {
		t.Fatal(err)
	}
	rep, err := k.c.Reply(wire.Shell, req, timeout)
	if err != nil || wiretest.Content(rep)["status"] != "ok" {
		t.Fatalf("%v %v", rep, err)
	}
	outs, _ := k.c.Outputs(req, timeout)
	for _, m := range outs {
		if m.Type() == "execute_result" && !strings.Contains(string(m.Content), "hello gopher") {
			t.Fatalf("result %s", m.Content)
		}
	}
}

func TestCompleteInspectIsCompleteCommInfo(t *testing.T) {
	k := start(t, dispatch.Options{})
	tests := []struct {
		msgType string
		content map[string]any
		check   func(c map[string]any) bool
	}{
		{"complete_request", map[string]any{"code": "fmt.Pr", "cursor_pos": 6}, func(c map[string]any) bool {
			return c["status"] == "ok" && len(c["matches"].([]any)) == 2 && c["cursor_start"] == 4.0 && c["cursor_end"] == 6.0
		}},
		{"inspect_request", map[string]any{"code": "fmt.Println", "cursor_pos": 5, "detail_level": 0}, func(c map[string]any) bool {
			return c["found"] == true && strings.Contains(c["data"].(map[string]any)["text/plain"].(string), "Println")
		}},
		{"inspect_request", map[string]any{"code": "nothing", "cursor_pos": 3}, func(c map[string]any) bool {
			return c["status"] == "ok" && c["found"] == false
		}},
		{"is_complete_request", map[string]any{"code": "for {"}, func(c map[string]any) bool {
			return c["status"] == "incomplete" && c["indent"] == "\t"
		}},
		{"is_complete_request", map[string]any{"code": "x := 1"}, func(c map[string]any) bool { return c["status"] == "complete" }},
		{"comm_info_request", map[string]any{}, func(c map[string]any) bool {
			return c["status"] == "ok" && len(c["comms"].(map[string]any)) == 0
		}},
		{"complete_request", map[string]any{"code": 5}, func(c map[string]any) bool { return c["status"] == "error" }},
	}
	for _, tc := range tests {
		req, _ := k.c.Request(wire.Shell, tc.msgType, tc.content)
		rep, err := k.c.Reply(wire.Shell, req, timeout)
		if err != nil {
			t.Fatal(err)
		}
		if !tc.check(wiretest.Content(rep)) {
			t.Errorf("%s %v: reply %s", tc.msgType, tc.content, rep.Content)
		}
	}
}

func TestHistory(t *testing.T) {
	k := start(t, dispatch.Options{})
	for _, code := range []string{"1+1", "nothing", "1+1", "print:x"} {
		if _, _, err := k.c.Execute(code, nil, timeout); err != nil {
			t.Fatal(err)
		}
	}
	k.c.Execute("1+1", map[string]any{"store_history": false}, timeout)
	tests := []struct {
		query map[string]any
		want  string // inputs joined by ";"
	}{
		{map[string]any{"hist_access_type": "tail", "n": 2}, "1+1;print:x"},
		{map[string]any{"hist_access_type": "tail", "n": 10, "unique": true}, "nothing;1+1;print:x"},
		{map[string]any{"hist_access_type": "range", "session": 0, "start": 2, "stop": 4}, "nothing;1+1"},
		{map[string]any{"hist_access_type": "search", "pattern": "1?1"}, "1+1;1+1"},
		{map[string]any{"hist_access_type": "search", "pattern": "*", "n": 1}, "print:x"},
		{map[string]any{"hist_access_type": "search", "pattern": "1?1", "unique": true}, "1+1"},
	}
	for _, tc := range tests {
		tc.query["output"], tc.query["raw"] = false, true
		req, _ := k.c.Request(wire.Shell, "history_request", tc.query)
		rep, err := k.c.Reply(wire.Shell, req, timeout)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range wiretest.Content(rep)["history"].([]any) {
			got = append(got, h.([]any)[2].(string))
		}
		if strings.Join(got, ";") != tc.want {
			t.Errorf("%v: %q, want %q", tc.query, got, tc.want)
		}
	}
	req, _ := k.c.Request(wire.Shell, "history_request", map[string]any{"hist_access_type": "tail", "n": 1, "output": true, "raw": true})
	rep, _ := k.c.Reply(wire.Shell, req, timeout)
	h := wiretest.Content(rep)["history"].([]any)[0].([]any)
	if pair, ok := h[2].([]any); !ok || len(pair) != 2 || pair[0] != "print:x" {
		t.Fatalf("history with output %v", h)
	}
}

func TestStreamBatchingAndCap(t *testing.T) {
	k := start(t, dispatch.Options{FlushSize: 1000, MaxStreamBytes: 5000})
	rep, outs, err := k.c.Execute("spam:20000", nil, timeout)
	if err != nil || wiretest.Content(rep)["status"] != "ok" {
		t.Fatal(err)
	}
	stdout, notices := 0, 0
	for _, m := range outs {
		if m.Type() != "stream" {
			continue
		}
		c := wiretest.Content(m)
		text := c["text"].(string)
		if len(text) > 1000 {
			t.Errorf("stream message of %d bytes exceeds FlushSize", len(text))
		}
		if c["name"] == "stdout" {
			stdout += len(text)
		} else if strings.Contains(text, "further output is dropped") {
			notices++
		}
	}
	if stdout != 5000 || notices != 1 {
		t.Fatalf("stdout bytes %d (want 5000), truncation notices %d (want 1)", stdout, notices)
	}
}

// BenchmarkExecuteRoundTrip measures execute_request sent -> idle status
// received for a cell the fake engine answers at once: the protocol's own cost.
func BenchmarkExecuteRoundTrip(b *testing.B) {
	k := start(b, dispatch.Options{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, err := k.c.Request(wire.Shell, "execute_request", map[string]any{"code": "1+1"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.c.Outputs(req, timeout); err != nil {
			b.Fatal(err)
		}
		if _, err := k.c.Reply(wire.Shell, req, timeout); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNoPerExecuteGrowth checks that the protocol side retains almost nothing
// per execution: only the history entry (about 100 bytes for "1+1").
func TestNoPerExecuteGrowth(t *testing.T) {
	if testing.Short() {
		t.Skip("3,000 round trips")
	}
	k := start(t, dispatch.Options{})
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	run := func(n int) {
		for i := 0; i < n; i++ {
			req, err := k.c.Request(wire.Shell, "execute_request", map[string]any{"code": "1+1"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.c.Outputs(req, timeout); err != nil {
				t.Fatal(err)
			}
			if _, err := k.c.Reply(wire.Shell, req, timeout); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(500)
	h0 := heap()
	const n = 2500
	run(n)
	per := (heap() - h0) / n
	t.Logf("heap growth per execute: %d bytes", per)
	if per > 1024 {
		t.Fatalf("heap grows %d bytes per execute (want < 1 KiB)", per)
	}
}
