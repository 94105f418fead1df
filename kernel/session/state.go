package session

import (
	"context"
	"errors"
	"fmt"
	"go/scanner"
	"reflect"
	"sort"
	"strings"

	"github.com/traefik/yaegi/interp"

	"github.com/detlab/detlab/kernel/display"
)

// findDecl returns the declaration defining name ("f", "T", "T.M"), or nil.
func (s *Session) findDecl(name string) *decl {
	for i := len(s.decls) - 1; i >= 0; i-- {
		for _, n := range s.decls[i].names {
			if n == name {
				return s.decls[i]
			}
		}
	}
	return nil
}

// addDecls records ds, replacing the declarations they redefine.
func addDecls(old []*decl, ds []*decl) []*decl {
	names := map[string]bool{}
	for _, d := range ds {
		for _, n := range d.names {
			names[n] = true
		}
	}
	out := old[:0:0]
	for _, d := range old {
		keep := true
		for _, n := range d.names {
			if names[n] {
				keep = false
			}
		}
		if keep {
			out = append(out, d)
		}
	}
	return append(out, ds...)
}

// setVar records a global variable (replacing an older one of that name).
func (s *Session) setVar(v varInfo) {
	if v.name == "ctx" || v.name == "_" {
		return
	}
	for i := range s.vars {
		if s.vars[i].name == v.name {
			s.vars = append(s.vars[:i], s.vars[i+1:]...)
			break
		}
	}
	s.vars = append(s.vars, v)
}

// cachePointers remembers where the variables live in generation g, so
// that a later generation can take their values without evaluating in g.
func (s *Session) cachePointers(g *generation, names []string) {
	for _, n := range names {
		p, err := g.safeEval("&" + n)
		if err == nil && p.IsValid() && p.Kind() == reflect.Pointer && !p.IsNil() {
			g.ptrs[n] = p
		}
	}
}

// yaegi compiles a chunk of declarations as "package main;" + chunk and
// a chunk of statements as "package main; func main() {" + chunk: columns
// on line 1 count those prefixes.
const (
	declWrapLen = len("package main;")
	stmtWrapLen = len("package main; func main() {")
)

// cellLocator maps a chunk position of cell c to traceback lines; prefix is
// the length of text before the cell's first byte on line 1 of what yaegi
// parsed. yaegi sometimes reports the start of the chunk for an error
// inside it (a panic() call, some compile errors): that is said plainly.
func cellLocator(c *cell, prefix int) func(line, col int) []string {
	return func(line, col int) []string {
		if line == 1 {
			col -= prefix
			if col < 1 {
				return []string{"  in the cell (the interpreter did not tell the line)"}
			}
		}
		return []string{fmt.Sprintf("  cell line %d, column %d", line, col), lineOf(c.src, line)}
	}
}

// declare evaluates the cell's imports and declarations, starting a new
// interpreter generation when the cell redefines a type or a method.
func (s *Session) declare(ctx context.Context, c *cell) error {
	var redefined []string
	rebuild := false
	for _, d := range c.decls {
		for _, n := range d.names {
			if s.gen.tainted[n] && (d.kind == declType || d.kind == declMethod) {
				// A failed cell may have left a version of it in the
				// interpreter that yaegi would keep.
				rebuild = true
				if d.kind == declType {
					redefined = append(redefined, n)
				}
			}
			old := s.findDecl(n)
			if old == nil || old.src == d.src {
				continue
			}
			if d.kind == declType || d.kind == declMethod || old.kind == declType || old.kind == declMethod {
				rebuild = true
				if d.kind == declType {
					redefined = append(redefined, n)
				}
			}
		}
	}
	if rebuild {
		return s.rebuild(ctx, c, redefined)
	}
	g := s.gen
	s.genCells++
	for _, im := range c.imports {
		if g.imported[im] {
			continue
		}
		if _, err := g.safeEval(im.String()); err != nil {
			return &ExecError{Name: "ImportError", Value: importMessage(im, err), Traceback: []string{"ImportError: " + importMessage(im, err)}}
		}
		g.imported[im] = true
		s.addImport(im)
	}
	if c.declSrc == "" {
		return nil
	}
	cctx, stop := cellContext(ctx, g)
	r := s.eval(cctx, g, c.declSrc)
	stop()
	for _, d := range c.decls {
		d.chunkLine = d.line
	}
	if r.err == nil || !r.interrupted {
		// Even a failed chunk may have declared some names; record what
		// the cell meant so that the next run compares against it.
		if r.err == nil {
			s.decls = addDecls(s.decls, c.decls)
			s.rebind(g, multiVars(c.decls))
			var names []string
			for _, d := range c.decls {
				for _, v := range d.vars {
					s.setVar(v)
					names = append(names, v.name)
				}
			}
			s.cachePointers(g, names)
			return nil
		}
	}
	for _, d := range c.decls {
		for _, n := range d.names {
			g.tainted[n] = true
		}
	}
	return s.evalError(r, c, cellLocator(c, declWrapLen))
}

// importMessage explains a failed import.
func importMessage(im importSpec, err error) string {
	msg := err.Error()
	if strings.Contains(msg, "unable to find source") || strings.Contains(msg, "cannot find package") {
		return fmt.Sprintf("package %q is not available to cells: detlab knows the Go standard library and the packages in kernel/symbols", im.Path)
	}
	return fmt.Sprintf("importing %q: %s", im.Path, msg)
}

func (s *Session) addImport(im importSpec) {
	for _, x := range s.imports {
		if x == im {
			return
		}
	}
	s.imports = append(s.imports, im)
}

// cellContext derives the ctx cells see from the Execute context and sets
// g's ctx variable. The returned stop detaches it from ctx when the cell
// returns, so goroutines the cell started keep a live context.
func cellContext(ctx context.Context, g *generation) (context.Context, func()) {
	cctx, cancel := context.WithCancel(context.Background())
	detach := context.AfterFunc(ctx, cancel)
	if g.ctxVar.IsValid() && g.ctxVar.CanSet() {
		g.ctxVar.Set(reflect.ValueOf(cctx))
	}
	return cctx, func() { detach() }
}

// evalError turns a failed evaluation into an ExecError.
func (s *Session) evalError(r evalResult, c *cell, locate func(line, col int) []string) error {
	if r.interrupted {
		e := &ExecError{Name: "Interrupted", Value: "the cell was interrupted", Traceback: []string{"Interrupted: the cell was interrupted"}}
		if r.abandoned {
			s.abandon()
		}
		return e
	}
	var p interp.Panic
	if errors.As(r.err, &p) {
		return s.panicError(p, c, locate)
	}
	return compileError(r.err, locate)
}

// abandon leaves a generation whose interrupted code does not return:
// the session goes on in a fresh generation with the same declarations and
// variables, and the old code runs on unseen.
func (s *Session) abandon() {
	s.stream("stderr", "detlab: the interrupted cell is still running compiled code that does not watch ctx; "+
		"it goes on in the background and the session continues in a fresh interpreter.\n")
	if err := s.rebuild(context.Background(), nil, nil); err != nil {
		s.stream("stderr", "detlab: rebuilding the interpreter failed: "+err.Error()+"\n")
	}
}

// statements runs the cell's top-level statements and returns the final
// expression's bundle.
func (s *Session) statements(ctx context.Context, c *cell) (*display.Data, error) {
	g := s.gen
	wrapFinal := c.finalStart >= 0 && !noValue(c.finalCall)
	src, prefix := instrument(c, wrapFinal)
	s.resMu.Lock()
	s.result, s.haveRes = nil, false
	s.resMu.Unlock()
	cctx, stop := cellContext(ctx, g)
	g.line.Store(0)
	r := s.eval(cctx, g, src)
	if r.err != nil && wrapFinal && !r.interrupted && isCompileError(r.err) {
		// The final expression has no value (a call of a function without
		// results) or is not an expression a value can be taken of.
		src, prefix = instrument(c, false)
		r = s.eval(cctx, g, src)
	}
	stop()
	if !r.abandoned {
		if !r.interrupted {
			s.rebind(g, c.defined)
		}
		var names []string
		for _, v := range c.defined {
			s.setVar(v)
			names = append(names, v.name)
		}
		s.cachePointers(g, names)
	}
	if r.err != nil {
		return nil, s.evalError(r, c, stmtLocator(c, stmtWrapLen+prefix, g))
	}
	s.resMu.Lock()
	vals, ok := s.result, s.haveRes
	s.result, s.haveRes = nil, false
	s.resMu.Unlock()
	if !ok {
		return nil, nil
	}
	if v, err, ok := valueAndError(vals); ok {
		if err != nil {
			return nil, finalError(err, c)
		}
		vals = []interface{}{v}
	}
	return s.formatResult(vals), nil
}

// valueAndError splits the values of a final expression that follows Go's
// (value, error) idiom: two values, the second an error or nil. ok is false
// for other values.
func valueAndError(vals []interface{}) (v interface{}, err error, ok bool) {
	if len(vals) != 2 {
		return nil, nil, false
	}
	if vals[1] == nil {
		return vals[0], nil, true
	}
	if e, isErr := vals[1].(error); isErr {
		return vals[0], e, true
	}
	return nil, nil, false
}

// finalError is the cell's error when its final expression returned a
// non-nil error.
func finalError(err error, c *cell) *ExecError {
	msg := err.Error()
	line := strings.Count(c.src[:c.finalStart], "\n") + 1
	return &ExecError{Name: "error", Value: msg, Traceback: []string{
		"error: " + msg,
		fmt.Sprintf("  returned by the final expression, cell line %d", line),
		lineOf(c.src, line),
	}}
}

// instrument returns the statements of c to evaluate: each preceded by a
// call recording its line (appended to the previous statement's line, so
// that no position moves), the final expression wrapped to capture its
// value when wrapFinal. A statement funcWrapped selects runs inside a
// function literal, opened on the previous statement's line and closed
// right after it, so that no position inside it moves. prefix is the
// length of what precedes the cell's text on line 1.
func instrument(c *cell, wrapFinal bool) (string, int) {
	type edit struct {
		at, to int
		text   string
	}
	var edits []edit
	wrapped := make([]bool, len(c.spans))
	for i := range c.spans {
		wrapped[i] = i < len(c.stmts) && funcWrapped(c.stmts[i])
	}
	for i := 1; i < len(c.spans); i++ {
		text := fmt.Sprintf(";__detlab.L(%d)", c.spans[i].line)
		if wrapped[i] {
			text += ";func(){"
		}
		edits = append(edits, edit{c.spans[i-1].end, c.spans[i-1].end, text})
	}
	for i, w := range wrapped {
		if w {
			edits = append(edits, edit{c.spans[i].end, c.spans[i].end, "}()"})
		}
	}
	if wrapFinal {
		edits = append(edits, edit{c.finalStart, c.finalStart, resultCall}, edit{c.finalEnd, c.finalEnd, ")"})
	}
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].at < edits[j].at })
	src := c.stmtSrc
	var b strings.Builder
	head := "__detlab.Enter(0);"
	if len(c.spans) > 0 {
		head = fmt.Sprintf("__detlab.Enter(%d);", c.spans[0].line)
	}
	if len(wrapped) > 0 && wrapped[0] {
		head += "func(){"
	}
	b.WriteString(head)
	last := 0
	for _, e := range edits {
		if e.at > len(src) || e.at < last {
			continue
		}
		b.WriteString(src[last:e.at])
		b.WriteString(e.text)
		last = e.to
	}
	b.WriteString(src[last:])
	return b.String(), len(head)
}

// stmtLocator is cellLocator for statements: where yaegi does not tell the
// line, the statement last started (recorded by instrument's calls) does.
func stmtLocator(c *cell, prefix int, g *generation) func(line, col int) []string {
	exact := cellLocator(c, prefix)
	return func(line, col int) []string {
		if line == 1 && col <= prefix {
			if l := int(g.line.Load()); l > 0 {
				return []string{fmt.Sprintf("  cell line %d", l), lineOf(c.src, l)}
			}
		}
		return exact(line, col)
	}
}

// isCompileError reports whether err came from compiling, not running.
func isCompileError(err error) bool {
	var p interp.Panic
	if errors.As(err, &p) {
		return false
	}
	var el scanner.ErrorList
	if errors.As(err, &el) {
		return true
	}
	return errPos.MatchString(err.Error())
}

// noValue lists calls whose results a notebook user does not want shown.
func noValue(call string) bool {
	switch call {
	case "fmt.Print", "fmt.Printf", "fmt.Println", "fmt.Fprint", "fmt.Fprintf", "fmt.Fprintln",
		"print", "println", "panic", "close", "delete", "copy", "clear":
		return true
	}
	return false
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]bool) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
