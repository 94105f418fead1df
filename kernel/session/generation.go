package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"

	"github.com/detlab/detlab/kernel/display"
	"github.com/detlab/detlab/kernel/symbols"
)

// rtPath is the import path of the helpers every generation imports as
// __detlab: Go (recovering goroutines), Result (final expressions), Enter
// (which goroutine runs the cell) and Background.
const (
	rtPath     = "detlab.internal/rt"
	carryPath  = "detlab.internal/carry"
	resultCall = "__detlab.Result("
)

// generation is one yaegi interpreter and what the session knows of it.
type generation struct {
	no       int
	in       *interp.Interpreter
	ctxVar   reflect.Value // the cells' ctx variable, settable
	imported map[importSpec]bool
	goid     atomic.Int64 // goroutine running the current statements
	line     atomic.Int64 // line of the top-level statement last started
	ptrs     map[string]reflect.Value
	stop     *stopper // nil: use EvalWithContext
	// tainted names were declared by a cell whose declarations failed to
	// compile: yaegi may hold a half-declared version of them.
	tainted map[string]bool
}

// newGeneration creates an interpreter with the symbol tables, the runtime
// helpers and the ctx variable.
func (s *Session) newGeneration() (*generation, error) {
	s.genNo++
	g := &generation{no: s.genNo, imported: map[importSpec]bool{}, ptrs: map[string]reflect.Value{}, tainted: map[string]bool{}}
	stdout, stderr := s.streams[0].w, s.streams[1].w
	in := interp.New(interp.Options{
		Stdout:       stdout,
		Stderr:       &panicFilter{s: s, next: stderr},
		Stdin:        &stdinReader{s: s},
		Unrestricted: true, // cells see the real environment; os.Exit still panics (stdlib's restricted table)
		Args:         []string{"detlab"},
	})
	if err := in.Use(stdlib.Symbols); err != nil {
		return nil, fmt.Errorf("session: loading the standard library: %w", err)
	}
	if err := in.Use(symbols.Symbols); err != nil {
		return nil, fmt.Errorf("session: loading symbol tables: %w", err)
	}
	// os.Stdin in cells reads lines from the front end; os.Stderr is the
	// session's pipe (yaegi sets it only when Options.Stderr is a file, and
	// ours is the filter that keeps panic positions).
	var stdin io.Reader = &stdinReader{s: s}
	if err := in.Use(interp.Exports{"os/os": {
		"Stdin":  reflect.ValueOf(&stdin).Elem(),
		"Stderr": reflect.ValueOf(&stderr).Elem(),
	}}); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	if err := in.Use(s.runtimeExports(g)); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	g.in = in
	g.stop = newStopper(in)
	if _, err := in.Eval(`import __detlab "` + rtPath + `"`); err != nil {
		return nil, fmt.Errorf("session: importing the runtime helpers: %w", err)
	}
	if _, err := in.Eval(`var ctx = __detlab.Background()`); err != nil {
		return nil, fmt.Errorf("session: declaring ctx: %w", err)
	}
	p, err := in.Eval(`&ctx`)
	if err != nil || p.Kind() != reflect.Pointer {
		return nil, fmt.Errorf("session: reaching ctx: %v", err)
	}
	g.ctxVar = p.Elem()
	return g, nil
}

// safeEval evaluates a short piece of the session's own code (an import,
// "&x"): a panic escaping yaegi's compiler becomes an error.
func (g *generation) safeEval(src string) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("session: the interpreter panicked on %q: %v", src, r)
		}
	}()
	return g.in.Eval(src)
}

// runtimeExports are the helpers generation g imports as __detlab.
func (s *Session) runtimeExports(g *generation) interp.Exports {
	result := func(vals ...interface{}) {
		s.resMu.Lock()
		s.result, s.haveRes = vals, true
		s.resMu.Unlock()
	}
	goFn := func(f interface{}, args ...interface{}) { s.goCall(f, args) }
	enter := func(line int) {
		g.goid.Store(goid())
		g.line.Store(int64(line))
	}
	line := func(n int) { g.line.Store(int64(n)) }
	background := func() context.Context { return context.Background() }
	rv := reflect.ValueOf(result)
	return interp.Exports{
		rtPath + "/rt": {
			"Go":         reflect.ValueOf(goFn),
			"Result":     rv,
			"Enter":      reflect.ValueOf(enter),
			"L":          reflect.ValueOf(line),
			"Background": reflect.ValueOf(background),
		},
		".": {"MapTypes": reflect.ValueOf(map[reflect.Value][]reflect.Type{rv: richInterfaces})},
	}
}

// richInterfaces are the interfaces an interpreted final value is wrapped
// in, in order of preference, so that its methods reach display.Bundle.
var richInterfaces = []reflect.Type{
	reflect.TypeOf((*display.HTMLer)(nil)).Elem(),
	reflect.TypeOf((*display.Markdowner)(nil)).Elem(),
	reflect.TypeOf((*display.PNGer)(nil)).Elem(),
	reflect.TypeOf((*display.SVGer)(nil)).Elem(),
	reflect.TypeOf((*display.JSONer)(nil)).Elem(),
	reflect.TypeOf((*error)(nil)).Elem(),
	reflect.TypeOf((*fmt.Stringer)(nil)).Elem(),
}

// goCall runs f(args...) in a goroutine that recovers a panic and reports it
// on the cell's standard error instead of ending the process.
func (s *Session) goCall(f interface{}, args []interface{}) {
	fv := reflect.ValueOf(f)
	if fv.Kind() != reflect.Func {
		s.stream("stderr", fmt.Sprintf("detlab: go statement on a %T, not a function\n", f))
		return
	}
	in, err := callArgs(fv.Type(), args)
	if err != nil {
		s.stream("stderr", "detlab: go statement: "+err.Error()+"\n")
		return
	}
	s.goroutines.Add(1)
	go func() {
		defer s.goroutines.Add(-1)
		defer func() {
			if r := recover(); r != nil {
				var b strings.Builder
				fmt.Fprintf(&b, "panic in a goroutine started by a cell: %v\n", r)
				for _, l := range s.takePanicLines() {
					m := panicLine.FindStringSubmatch(l)
					if m == nil {
						continue
					}
					fn := strings.TrimPrefix(m[3], "main.")
					if fn == "func" || fn == "main" {
						fn = "a function literal"
					}
					fmt.Fprintf(&b, "    in %s, line %s of the cell that declared it\n", fn, m[1])
				}
				b.WriteString("detlab: the goroutine stopped; the session and its variables are intact.\n")
				s.stream("stderr", b.String())
			}
		}()
		fv.Call(in)
	}()
}

// callArgs converts args to f's parameter types as the go statement's
// compiler would have (untyped constants become the parameter's type).
func callArgs(ft reflect.Type, args []interface{}) ([]reflect.Value, error) {
	n := ft.NumIn()
	if (!ft.IsVariadic() && len(args) != n) || (ft.IsVariadic() && len(args) < n-1) {
		return nil, fmt.Errorf("%d arguments for a function of %d parameters", len(args), n)
	}
	in := make([]reflect.Value, len(args))
	for i, a := range args {
		var pt reflect.Type
		if ft.IsVariadic() && i >= n-1 {
			pt = ft.In(n - 1).Elem()
		} else {
			pt = ft.In(i)
		}
		if a == nil {
			in[i] = reflect.Zero(pt)
			continue
		}
		v := reflect.ValueOf(a)
		switch {
		case v.Type().AssignableTo(pt):
		case v.Type().ConvertibleTo(pt):
			v = v.Convert(pt)
		default:
			return nil, fmt.Errorf("argument %d: %s is not assignable to %s", i+1, v.Type(), pt)
		}
		in[i] = v
	}
	return in, nil
}

// goid returns the current goroutine's id.
func goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		n, _ := strconv.ParseInt(string(b[:i]), 10, 64)
		return n
	}
	return 0
}

// goroutineAlive reports whether goroutine id still exists.
func goroutineAlive(id int64) bool {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return bytes.HasPrefix(buf, []byte(fmt.Sprintf("goroutine %d [", id))) ||
		bytes.Contains(buf, []byte(fmt.Sprintf("\ngoroutine %d [", id)))
}

// panicLine matches the position lines yaegi prints for each interpreted
// frame a panic unwinds: "3:5: panic: main.f(...)".
var panicLine = regexp.MustCompile(`^(?:_\.go:)?(\d+):(\d+): panic: (.*?)(?:\(\.\.\.\))?\s*$`)

// panicFilter sits on the interpreter's standard error: yaegi's panic
// position lines are kept for the traceback, the rest passes through.
type panicFilter struct {
	s    *Session
	next io.Writer
}

func (f *panicFilter) Write(p []byte) (int, error) {
	if panicLine.Match(bytes.TrimRight(p, "\n")) {
		f.s.panicMu.Lock()
		f.s.panicLines = append(f.s.panicLines, strings.TrimRight(string(p), "\n"))
		if len(f.s.panicLines) > 100 {
			f.s.panicLines = f.s.panicLines[len(f.s.panicLines)-100:]
		}
		f.s.panicMu.Unlock()
		return len(p), nil
	}
	return f.next.Write(p)
}

func (s *Session) takePanicLines() []string {
	s.panicMu.Lock()
	defer s.panicMu.Unlock()
	l := s.panicLines
	s.panicLines = nil
	return l
}

// evalResult is what evaluating a chunk came to.
type evalResult struct {
	v           reflect.Value
	err         error
	interrupted bool
	abandoned   bool // the interrupted code did not return within the grace period
}

// eval evaluates src in generation g, stopping it when ctx is cancelled.
func (s *Session) eval(ctx context.Context, g *generation, src string) evalResult {
	g.goid.Store(0)
	s.takePanicLines()
	if g.stop != nil {
		return s.evalStoppable(ctx, g, src)
	}
	v, err := g.in.EvalWithContext(ctx, src)
	if err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return evalResult{err: err, interrupted: true, abandoned: !s.settle(g)}
	}
	return evalResult{v: v, err: err}
}

// settle waits for the interrupted evaluation to return: interpreted code
// stops at once, compiled code only when it returns. It reports false when
// it is still running after the grace period.
func (s *Session) settle(g *generation) bool {
	deadline := time.Now().Add(s.opts.InterruptGrace)
	for {
		id := g.goid.Load()
		if id != 0 && !goroutineAlive(id) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// errPos matches a compile error's position prefix.
var errPos = regexp.MustCompile(`^(?:_\.go:)?(\d+):(\d+): (.*)$`)

// compileError turns an interpreter error on a chunk into an ExecError;
// locate maps a chunk line to a description of where it is.
func compileError(err error, locate func(line, col int) []string) *ExecError {
	msg := err.Error()
	first := msg
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		first = msg[:i]
	}
	m := errPos.FindStringSubmatch(first)
	if m == nil {
		return &ExecError{Name: "CompileError", Value: msg, Traceback: []string{"CompileError: " + msg}}
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	tb := append([]string{"CompileError: " + m[3]}, locate(line, col)...)
	return &ExecError{Name: "CompileError", Value: m[3], Traceback: tb}
}

// panicError turns a panic out of a cell into an ExecError with the cell
// positions yaegi reported and the compiled frames, if any.
func (s *Session) panicError(p interp.Panic, c *cell, locate func(line, col int) []string) *ExecError {
	val := fmt.Sprint(p.Value)
	tb := []string{"panic: " + val}
	for _, l := range s.takePanicLines() {
		m := panicLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		fn := strings.TrimPrefix(m[3], "main.")
		if fn == "main" {
			tb = append(tb, locate(line, col)...)
			continue
		}
		tb = append(tb, s.declFrame(fn, line, col, c)...)
	}
	tb = append(tb, compiledFrames(p.Stack)...)
	return &ExecError{Name: "panic", Value: val, Traceback: tb}
}

// declFrame describes a frame in function fn at chunk position line:col.
func (s *Session) declFrame(fn string, line, col int, c *cell) []string {
	d := s.findDecl(fn)
	if d == nil {
		if c != nil {
			return []string{fmt.Sprintf("  in %s, cell line %d, column %d", fn, line, col), lineOf(c.src, line)}
		}
		return []string{fmt.Sprintf("  in %s, line %d, column %d", fn, line, col)}
	}
	if line == 1 {
		col -= declWrapLen
	}
	orig := d.line + line - d.chunkLine
	if c != nil && d.cellNo == s.cellNo {
		return []string{fmt.Sprintf("  in %s, cell line %d, column %d", fn, orig, col), lineOf(c.src, orig)}
	}
	return []string{fmt.Sprintf("  in %s, line %d of the cell that declared it (cell %d of this session)", fn, orig, d.cellNo),
		lineOf(d.src, line-d.chunkLine+1)}
}

// compiledFrames lists the frames of compiled code (library, standard
// library) a panic went through, innermost first, skipping the runtime,
// reflect, the interpreter and the session.
func compiledFrames(stack []byte) []string {
	var out []string
	lines := strings.Split(string(stack), "\n")
	for i := 0; i+1 < len(lines) && len(out) < 6; i++ {
		fn := lines[i]
		if !strings.HasPrefix(lines[i+1], "\t") || strings.HasPrefix(fn, "\t") || fn == "" {
			continue
		}
		loc := strings.TrimSpace(lines[i+1])
		if j := strings.LastIndex(loc, " +0x"); j > 0 {
			loc = loc[:j]
		}
		i++
		name := fn
		if j := strings.LastIndex(name, "("); j > 0 {
			name = name[:j]
		}
		switch {
		case strings.HasPrefix(name, "runtime."), strings.HasPrefix(name, "reflect."),
			name == "panic", strings.HasPrefix(name, "goroutine "),
			strings.Contains(name, "traefik/yaegi"), strings.Contains(name, "kernel/session"),
			strings.HasPrefix(name, "created by"), strings.HasPrefix(name, "runtime/debug"):
			continue
		}
		out = append(out, fmt.Sprintf("  in compiled %s (%s)", name, loc))
	}
	return out
}
