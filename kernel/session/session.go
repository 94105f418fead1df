package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/detlab/detlab/kernel/display"
)

// Output receives what a running cell produces. The protocol side
// implements it over iopub; nbrun collects outputs into the notebook.
// Stream, Display, Update and Clear may be called from several goroutines
// but never at the same time; Input may be called while one of them runs
// (it blocks until the user answers).
type Output interface {
	// Stream sends text printed by the cell; name is "stdout" or "stderr".
	Stream(name, text string)
	// Display sends a display_data.
	Display(d display.Data)
	// Update sends an update_display_data (d.DisplayID is set).
	Update(d display.Data)
	// Clear sends a clear_output.
	Clear(wait bool)
	// Input asks the front end for a line (input_request); it returns an
	// error when standard input is not allowed.
	Input(prompt string, password bool) (string, error)
}

// ExecError is a failed cell: a compile error, a runtime error, a panic or
// an interruption. Its fields are those of Jupyter's error output.
type ExecError struct {
	Name      string   // ename: "SyntaxError", "CompileError", "panic", "error", "Interrupted", "MagicError"
	Value     string   // evalue: the message
	Traceback []string // lines, the first naming the error, then the cell positions
}

// Error returns "Name: Value".
func (e *ExecError) Error() string { return e.Name + ": " + e.Value }

// Options configure a Session. The zero value works.
type Options struct {
	// Dir is the working directory for cells and shell commands; when set,
	// New changes the process's working directory to it.
	Dir string
	// Env holds extra environment entries "NAME=value" set in the process
	// for cells and shell commands.
	Env []string
	// CaptureFDs redirects the process's file descriptors 1 and 2 through
	// pipes while the session lives, so that what compiled library code
	// and goroutines print reaches the running cell's output. The detlab
	// command enables it; tests leave it off. Only one session per process
	// may enable it.
	CaptureFDs bool
	// InterruptGrace is how long an interrupted cell may take to return
	// before the session gives up on its interpreter generation and moves
	// to a fresh one. Zero means 500ms.
	InterruptGrace time.Duration
	// MaxResultText caps the text/plain form of a cell's result, in bytes.
	// Zero means 100000.
	MaxResultText int
}

// Session is one notebook's interpreter state. Its methods are safe for
// concurrent use; Execute calls run one at a time.
type Session struct {
	opts Options

	mu     sync.Mutex // held by Execute, Complete, Inspect
	gen    *generation
	genNo  int
	cellNo int
	// genCells counts the cells the current generation ran; yaegi keeps a
	// few kilobytes per evaluation, so after recycleEvery cells the session
	// moves to a fresh generation when that drops no variable.
	genCells    int
	nextRecycle int
	goroutines  atomic.Int64 // goroutines started by go statements of cells, still running
	imports     []importSpec
	decls       []*decl
	vars        []varInfo // globals defined by statements and var declarations, in order

	outMu sync.Mutex // guards cur, last and serialises Output calls
	cur   Output
	last  Output

	bufMu   sync.Mutex // guards the stream buffer
	buf     strings.Builder
	bufName string
	timer   *time.Timer

	panicMu    sync.Mutex
	panicLines []string

	resMu   sync.Mutex
	result  []interface{}
	haveRes bool

	streams []*pipeStream // stdout, stderr
	logw    *os.File
	closed  bool
}

// New returns a session with a fresh interpreter.
func New(opts Options) (*Session, error) {
	if opts.InterruptGrace <= 0 {
		opts.InterruptGrace = 500 * time.Millisecond
	}
	if opts.MaxResultText <= 0 {
		opts.MaxResultText = 100000
	}
	if opts.Dir != "" {
		if err := os.Chdir(opts.Dir); err != nil {
			return nil, fmt.Errorf("session: %w", err)
		}
	}
	for _, e := range opts.Env {
		k, v, _ := strings.Cut(e, "=")
		if err := os.Setenv(k, v); err != nil {
			return nil, fmt.Errorf("session: setting %s: %w", k, err)
		}
	}
	s := &Session{opts: opts}
	streams, err := newStreams(s, opts.CaptureFDs)
	if err != nil {
		return nil, err
	}
	s.streams = streams
	s.logw = originalStderr(streams)
	g, err := s.newGeneration()
	if err != nil {
		stopStreams(s.streams)
		return nil, err
	}
	s.gen = g
	display.SetSink(sink{s})
	return s, nil
}

// Banner is the text kernel_info shows: the Go and yaegi versions, the CPU
// kernels, and the GPUs (with the memory models hold there) or why there
// are none.
func (s *Session) Banner() string {
	return fmt.Sprintf("detlab: Go %s on the yaegi interpreter (v0.16.1). %s %%help lists the magics.",
		strings.TrimPrefix(runtime.Version(), "go"), deviceBanner())
}

// LogWriter returns where the kernel's own logging should go: the process's
// original standard error even while CaptureFDs redirects it.
func (s *Session) LogWriter() io.Writer { return s.logw }

// Close releases the session; with CaptureFDs it restores the process's
// standard output and error.
func (s *Session) Close() error {
	s.outMu.Lock()
	if s.closed {
		s.outMu.Unlock()
		return nil
	}
	s.closed = true
	s.outMu.Unlock()
	display.SetSink(nil)
	syncStreams(s.streams)
	s.flushStream()
	return stopStreams(s.streams)
}

// Execute runs one cell and returns its result bundle (nil when the cell
// ends without a value). err is an *ExecError for a syntax or compile error,
// a panic, or an interruption (Name "Interrupted" when ctx was cancelled).
// The state of the session survives a failed cell: what ran before the
// failure stays done.
func (s *Session) Execute(ctx context.Context, code string, out Output) (*display.Data, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cellNo++
	display.SetSink(sink{s}) // the latest session to run a cell receives displays
	s.setOutput(out)
	defer s.endOutput(out)

	if strings.TrimSpace(code) == "" {
		return nil, nil
	}
	s.maybeRecycle()
	return s.execute(ctx, code)
}

// recycleEvery is how many cells a generation runs before the session
// tries to move to a fresh one, bounding the interpreter's memory.
const recycleEvery = 1000

// maybeRecycle moves to a fresh generation when the current one has run
// many cells and every variable can be carried over; else it tries again
// later.
func (s *Session) maybeRecycle() {
	if s.nextRecycle == 0 {
		s.nextRecycle = recycleEvery
	}
	if s.genCells < s.nextRecycle {
		return
	}
	if s.goroutines.Load() > 0 {
		// Goroutines of the cells may be writing variables of this
		// generation: a copy would not see their writes.
		return
	}
	if err := s.rebuildWith(context.Background(), nil, nil, true); err != nil {
		s.nextRecycle += recycleEvery
		return
	}
	s.nextRecycle = recycleEvery
}

// run executes Go code (magics already handled).
func (s *Session) run(ctx context.Context, code string) (*display.Data, error) {
	c, err := parseCell(code, s.cellNo)
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			return nil, &ExecError{Name: "SyntaxError", Value: se.msg,
				Traceback: []string{"SyntaxError: " + se.msg, fmt.Sprintf("  cell line %d, column %d", se.line, se.col), lineOf(code, se.line)}}
		}
		return nil, &ExecError{Name: "SyntaxError", Value: err.Error(), Traceback: []string{"SyntaxError: " + err.Error()}}
	}
	if err := s.declare(ctx, c); err != nil {
		if len(c.defined) > 0 && usesCellVar(err, c) {
			// A declaration uses a variable the cell's statements define:
			// run the cell in source order instead.
			return s.runOrdered(ctx, c)
		}
		return nil, err
	}
	if c.stmtSrc == "" {
		return nil, nil
	}
	return s.statements(ctx, c)
}

// setOutput makes out the current output.
func (s *Session) setOutput(out Output) {
	s.outMu.Lock()
	s.cur = out
	s.outMu.Unlock()
}

// endOutput flushes what the cell printed and keeps out as the destination
// of later goroutine output.
func (s *Session) endOutput(out Output) {
	syncStreams(s.streams)
	s.flushStream()
	s.outMu.Lock()
	s.cur = nil
	s.last = out
	s.outMu.Unlock()
}

// output returns where output goes now: the running cell's, else the last
// cell's (documented: goroutines printing after their cell ended reach the
// last cell that ran).
func (s *Session) withOutput(f func(Output)) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	o := s.cur
	if o == nil {
		o = s.last
	}
	if o != nil {
		f(o)
	}
}

// stream queues text for the named stream. Small writes are coalesced and
// sent within 20ms, at 32 KiB, when the other stream or a display comes, and
// when the cell ends.
func (s *Session) stream(name, text string) {
	if text == "" {
		return
	}
	s.bufMu.Lock()
	defer s.bufMu.Unlock()
	if s.bufName != name && s.buf.Len() > 0 {
		s.flushLocked()
	}
	s.bufName = name
	s.buf.WriteString(text)
	if s.buf.Len() >= 32<<10 {
		s.flushLocked()
	} else if s.timer == nil {
		s.timer = time.AfterFunc(20*time.Millisecond, s.flushStream)
	}
}

// flushStream sends what stream queued.
func (s *Session) flushStream() {
	s.bufMu.Lock()
	s.flushLocked()
	s.bufMu.Unlock()
}

func (s *Session) flushLocked() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.buf.Len() == 0 {
		return
	}
	name, text := s.bufName, s.buf.String()
	s.buf.Reset()
	s.withOutput(func(o Output) { o.Stream(name, text) })
}

// streamWriter is an io.Writer that sends to a stream of the current output.
type streamWriter struct {
	s    *Session
	name string
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.s.stream(w.name, string(p))
	return len(p), nil
}

// sink forwards displays to the current output.
type sink struct{ s *Session }

func (k sink) Display(d display.Data) {
	k.s.flushStream()
	k.s.withOutput(func(o Output) { o.Display(d) })
}

func (k sink) Update(d display.Data) {
	k.s.flushStream()
	k.s.withOutput(func(o Output) { o.Update(d) })
}

func (k sink) Clear(wait bool) {
	k.s.flushStream()
	k.s.withOutput(func(o Output) { o.Clear(wait) })
}
func (k sink) Input(prompt string, password bool) (string, error) {
	return k.s.input(prompt, password)
}

// input asks the current output for a line; the output lock is not held
// while waiting for the user.
func (s *Session) input(prompt string, password bool) (string, error) {
	s.flushStream()
	s.outMu.Lock()
	o := s.cur
	s.outMu.Unlock()
	if o == nil {
		return "", errors.New("session: no cell is running to ask for input")
	}
	return o.Input(prompt, password)
}

// stdinReader is the interpreter's standard input: each time its buffer is
// empty it asks the front end for one line.
type stdinReader struct {
	s   *Session
	buf []byte
	mu  sync.Mutex
}

func (r *stdinReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		line, err := r.s.input("", false)
		if err != nil {
			return 0, io.EOF
		}
		r.buf = []byte(line + "\n")
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// lineOf returns line n (1-based) of src, indented, for tracebacks.
func lineOf(src string, n int) string {
	lines := strings.Split(src, "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return "    " + strings.TrimRight(lines[n-1], " \t\r")
}

// formatResult turns the values of a final expression into a bundle.
func (s *Session) formatResult(vals []interface{}) *display.Data {
	if len(vals) == 0 {
		return nil
	}
	if len(vals) == 1 {
		if d, ok := display.Bundle(vals[0]); ok {
			return &d
		}
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = formatValue(v)
	}
	text := strings.Join(parts, " ")
	if len(text) > s.opts.MaxResultText {
		text = text[:s.opts.MaxResultText] + fmt.Sprintf("… (%d bytes in all)", len(text))
	}
	return &display.Data{MIME: map[string]any{"text/plain": text}}
}

// formatValue formats one value as fmt's %v does.
func formatValue(v interface{}) string {
	if v == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%v", v)
}
