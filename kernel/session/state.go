package session

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
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
		p, err := g.in.Eval("&" + n)
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
		if _, err := g.in.Eval(im.String()); err != nil {
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

// rebuild starts a new interpreter generation that replays the imports and
// declarations (with the cell's declarations, if c is not nil, in place of
// those they redefine) and carries over the variables whose types did not
// change. On failure the session stays as it was.
func (s *Session) rebuild(ctx context.Context, c *cell, redefined []string) error {
	return s.rebuildWith(ctx, c, redefined, false)
}

// errWouldDrop stops a strict rebuild that would drop variables.
var errWouldDrop = errors.New("session: a fresh generation would drop variables")

// rebuildWith is rebuild; with strict it gives up, changing nothing, when a
// variable could not be carried.
func (s *Session) rebuildWith(ctx context.Context, c *cell, redefined []string, strict bool) error {
	old := s.gen
	ng, err := s.newGeneration()
	if err != nil {
		return &ExecError{Name: "InternalError", Value: err.Error(), Traceback: []string{err.Error()}}
	}
	imports := append([]importSpec(nil), s.imports...)
	var cellDecls []*decl
	if c != nil {
		imports = append(imports, c.imports...)
		cellDecls = c.decls
	}
	for _, im := range imports {
		if ng.imported[im] {
			continue
		}
		if _, err := ng.in.Eval(im.String()); err != nil {
			return &ExecError{Name: "ImportError", Value: importMessage(im, err), Traceback: []string{"ImportError: " + importMessage(im, err)}}
		}
		ng.imported[im] = true
	}
	decls := addDecls(s.decls, cellDecls)
	changed := changedTypes(decls, redefined)

	// The chunk: the cell's declarations at their own lines, then the
	// replayed ones, then declarations of the carried variables.
	var b strings.Builder
	cellLines := 0
	if c != nil && c.declSrc != "" {
		b.WriteString(c.declSrc)
		cellLines = strings.Count(c.declSrc, "\n") + 1
		for _, d := range cellDecls {
			d.chunkLine = d.line
		}
	}
	line := cellLines + 1
	inCell := map[*decl]bool{}
	for _, d := range cellDecls {
		inCell[d] = true
	}
	var replayed []*decl
	for _, d := range decls {
		if inCell[d] || d.kind == declVar {
			continue
		}
		b.WriteString("\n")
		d.chunkLine = line
		b.WriteString(d.src)
		line += strings.Count(d.src, "\n") + 1
		replayed = append(replayed, d)
	}
	// Variables: those the cell declares itself are not carried.
	cellVars := map[string]bool{}
	for _, d := range cellDecls {
		for _, n := range d.names {
			cellVars[n] = true
		}
	}
	type carried struct {
		v   varInfo
		ptr reflect.Value
	}
	var carry []carried
	dropped := map[string][]string{} // reason -> names
	var dropOrder []string
	drop := func(reason, name string) {
		if _, ok := dropped[reason]; !ok {
			dropOrder = append(dropOrder, reason)
		}
		dropped[reason] = append(dropped[reason], name)
	}
	getters := map[string]reflect.Value{}
	var known map[reflect.Type]string
	var keptVars []varInfo
	for _, v := range s.vars {
		if cellVars[v.name] {
			continue
		}
		p, ok := old.ptrs[v.name]
		if !ok {
			drop("their values could not be reached", v.name)
			continue
		}
		typ := resolveHint(v.typ, decls)
		if t := mentions(typ, changed); t != "" {
			drop(fmt.Sprintf("their type %s was redefined", t), v.name)
			continue
		}
		if c != nil && holdsNotebookValue(p.Elem()) {
			// An interface holding a value of a notebook type would keep
			// the old type's methods.
			drop("they hold a value of a type declared in the notebook, whose code changed", v.name)
			continue
		}
		if typ == "" && hasUnnamedStruct(p.Elem().Type()) {
			// Recognise the notebook's struct types by their layout.
			if known == nil {
				known = s.notebookTypes(old, decls, changed)
			}
			typ = typeExpr(p.Elem().Type(), known)
			if t := mentions(typ, changed); t != "" {
				drop(fmt.Sprintf("their type %s was redefined", t), v.name)
				continue
			}
		}
		if typ == "" {
			t := p.Elem().Type()
			if hasUnnamedStruct(t) {
				drop("their type, declared in the notebook, could not be told from the source", v.name)
				continue
			}
			fn := reflect.MakeFunc(reflect.FuncOf(nil, []reflect.Type{t}, false), func([]reflect.Value) []reflect.Value {
				return []reflect.Value{reflect.Zero(t)}
			})
			getters["V_"+v.name] = fn
			fmt.Fprintf(&b, "\nvar %s = __detlab_carry.V_%s()", v.name, v.name)
		} else {
			fmt.Fprintf(&b, "\nvar %s %s", v.name, typ)
		}
		line++
		carry = append(carry, carried{v, p})
	}
	if len(getters) > 0 {
		if err := ng.in.Use(interp.Exports{carryPath + "/carry": getters}); err != nil {
			return &ExecError{Name: "InternalError", Value: err.Error(), Traceback: []string{err.Error()}}
		}
		if _, err := ng.in.Eval(`import __detlab_carry "` + carryPath + `"`); err != nil {
			return &ExecError{Name: "InternalError", Value: err.Error(), Traceback: []string{err.Error()}}
		}
	}
	if b.Len() > 0 {
		cctx, stop := cellContext(ctx, ng)
		r := s.eval(cctx, ng, b.String())
		stop()
		if r.err != nil {
			loc := func(l, col int) []string {
				if l <= cellLines && c != nil {
					return cellLocator(c, declWrapLen)(l, col)
				}
				for _, d := range replayed {
					n := strings.Count(d.src, "\n") + 1
					if l >= d.chunkLine && l < d.chunkLine+n {
						return []string{fmt.Sprintf("  while replaying %s from cell %d (its line %d): a declaration from an earlier cell no longer compiles; redefine it too, or %%reset",
							strings.Join(d.names, ", "), d.cellNo, d.line+l-d.chunkLine), lineOf(d.src, l-d.chunkLine+1)}
					}
				}
				return []string{fmt.Sprintf("  while carrying variables over (line %d)", l)}
			}
			if r.interrupted {
				return &ExecError{Name: "Interrupted", Value: "the cell was interrupted", Traceback: []string{"Interrupted: the cell was interrupted"}}
			}
			return s.evalError(r, c, loc)
		}
	}
	// Set the carried values.
	var names []string
	for _, cv := range carry {
		np, err := ng.in.Eval("&" + cv.v.name)
		if err != nil || np.Kind() != reflect.Pointer || np.IsNil() {
			drop("their values could not be reached", cv.v.name)
			continue
		}
		ov := cv.ptr.Elem()
		nv := np.Elem()
		if !ov.Type().AssignableTo(nv.Type()) {
			drop(fmt.Sprintf("their type changed (it depends on a redefined type: %s)", strings.Join(redefined, ", ")), cv.v.name)
			continue
		}
		nv.Set(ov)
		ng.ptrs[cv.v.name] = np
		names = append(names, cv.v.name)
		keptVars = append(keptVars, cv.v)
	}
	if strict && len(dropOrder) > 0 {
		return errWouldDrop
	}
	// Commit.
	s.gen = ng
	s.genCells = 0
	s.decls = decls
	s.imports = nil
	for _, im := range imports {
		s.addImport(im)
	}
	for _, d := range cellDecls {
		for _, v := range d.vars {
			keptVars = append(keptVars, v)
		}
	}
	s.vars = keptVars
	var cellVarNames []string
	for _, d := range cellDecls {
		for _, v := range d.vars {
			cellVarNames = append(cellVarNames, v.name)
		}
	}
	s.cachePointers(ng, cellVarNames)
	for _, reason := range dropOrder {
		ns := dropped[reason]
		word := "variables"
		if len(ns) == 1 {
			word = "variable"
			reason = strings.NewReplacer("their values", "its value", "their type", "its type", "they hold", "it holds").Replace(reason)
		}
		s.stream("stderr", fmt.Sprintf("detlab: dropped %s %s: %s\n", word, strings.Join(ns, ", "), reason))
	}
	return nil
}

// changedTypes returns the redefined type names plus the declared types
// whose definitions mention one of them, transitively.
func changedTypes(decls []*decl, redefined []string) map[string]bool {
	changed := map[string]bool{}
	for _, n := range redefined {
		changed[n] = true
	}
	for again := true; again; {
		again = false
		for _, d := range decls {
			if d.kind != declType || changed[d.names[0]] {
				continue
			}
			if mentions(d.src, changed) != "" {
				changed[d.names[0]] = true
				again = true
			}
		}
	}
	return changed
}

// mentions returns the first identifier of src that is in names, or "".
func mentions(src string, names map[string]bool) string {
	if src == "" || len(names) == 0 {
		return ""
	}
	var sc scanner.Scanner
	fset := token.NewFileSet()
	sc.Init(fset.AddFile("", -1, len(src)), []byte(src), nil, 0)
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			return ""
		}
		if tok == token.IDENT && names[lit] {
			return lit
		}
	}
}

// resolveHint turns a "call:f:i" hint into the i-th result type of the
// declared function f; other hints are returned as they are.
func resolveHint(h string, decls []*decl) string {
	if !strings.HasPrefix(h, "call:") {
		return h
	}
	parts := strings.Split(h, ":")
	if len(parts) != 3 {
		return ""
	}
	name := parts[1]
	var i int
	fmt.Sscan(parts[2], &i)
	for j := len(decls) - 1; j >= 0; j-- {
		d := decls[j]
		if d.kind == declType && d.names[0] == name && i == 0 {
			return name // a conversion T(x)
		}
		if d.kind != declFunc || d.names[0] != name {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), "", "package p;"+d.src, parser.SkipObjectResolution)
		if err != nil || len(f.Decls) == 0 {
			return ""
		}
		fd, ok := f.Decls[0].(*ast.FuncDecl)
		if !ok || fd.Type.Results == nil {
			return ""
		}
		var types []string
		for _, r := range fd.Type.Results.List {
			t := ("package p;" + d.src)[r.Type.Pos()-1 : r.Type.End()-1]
			k := len(r.Names)
			if k == 0 {
				k = 1
			}
			for ; k > 0; k-- {
				types = append(types, t)
			}
		}
		if i < len(types) {
			return types[i]
		}
		return ""
	}
	return ""
}

// notebookTypes maps the reflect types of the notebook's struct types in
// generation g to their names. Types whose definitions changed are mapped
// too (a variable of one must be recognised to be dropped).
func (s *Session) notebookTypes(g *generation, decls []*decl, changed map[string]bool) map[reflect.Type]string {
	m := map[reflect.Type]string{}
	for _, d := range s.decls {
		if d.kind != declType {
			continue
		}
		name := d.names[0]
		v, err := g.in.Eval("*new(" + name + ")")
		if err != nil || !v.IsValid() {
			continue
		}
		if t := v.Type(); t.Kind() == reflect.Struct && t.Name() == "" {
			if _, dup := m[t]; dup {
				m[t] = "" // two types of one layout: ambiguous
			} else {
				m[t] = name
			}
		}
	}
	return m
}

// typeExpr writes t as Go source using the notebook's type names for its
// struct types; "" when a part cannot be written (a compiled named type).
func typeExpr(t reflect.Type, known map[reflect.Type]string) string {
	if n, ok := known[t]; ok {
		return n // "" when ambiguous
	}
	if t.Name() != "" {
		if t.PkgPath() == "" {
			return t.Name() // a predeclared type
		}
		return ""
	}
	sub := func(t reflect.Type) string { return typeExpr(t, known) }
	switch t.Kind() {
	case reflect.Pointer:
		if e := sub(t.Elem()); e != "" {
			return "*" + e
		}
	case reflect.Slice:
		if e := sub(t.Elem()); e != "" {
			return "[]" + e
		}
	case reflect.Array:
		if e := sub(t.Elem()); e != "" {
			return fmt.Sprintf("[%d]%s", t.Len(), e)
		}
	case reflect.Map:
		k, e := sub(t.Key()), sub(t.Elem())
		if k != "" && e != "" {
			return "map[" + k + "]" + e
		}
	}
	return ""
}

// holdsNotebookValue reports whether v is an interface holding a value of
// a type the notebook declared: yaegi stores those as unnamed structs, or
// inside its generated interface wrappers.
func holdsNotebookValue(v reflect.Value) bool {
	if v.Kind() != reflect.Interface || v.IsNil() {
		return false
	}
	t := v.Elem().Type()
	for t.Kind() == reflect.Pointer && t.Name() == "" {
		t = t.Elem()
	}
	if strings.HasPrefix(t.Name(), "_") && (strings.Contains(t.PkgPath(), "traefik/yaegi") || strings.HasSuffix(t.PkgPath(), "kernel/symbols")) {
		return true
	}
	return hasUnnamedStruct(v.Elem().Type())
}

// hasUnnamedStruct reports whether t contains an unnamed struct type: the
// shape yaegi gives the types a cell declares.
func hasUnnamedStruct(t reflect.Type) bool {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type) bool
	walk = func(t reflect.Type) bool {
		if seen[t] {
			return false
		}
		seen[t] = true
		if t.Name() != "" {
			return false
		}
		switch t.Kind() {
		case reflect.Struct:
			return true
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan:
			return walk(t.Elem())
		case reflect.Map:
			return walk(t.Key()) || walk(t.Elem())
		case reflect.Func:
			for i := 0; i < t.NumIn(); i++ {
				if walk(t.In(i)) {
					return true
				}
			}
			for i := 0; i < t.NumOut(); i++ {
				if walk(t.Out(i)) {
					return true
				}
			}
		}
		return false
	}
	return walk(t)
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
	return s.formatResult(vals), nil
}

// instrument returns the statements of c to evaluate: each preceded by a
// call recording its line (appended to the previous statement's line, so
// that no position moves), the final expression wrapped to capture its
// value when wrapFinal. prefix is the length of what precedes the cell's
// text on line 1.
func instrument(c *cell, wrapFinal bool) (string, int) {
	type edit struct {
		at, to int
		text   string
	}
	var edits []edit
	for i := 1; i < len(c.spans); i++ {
		edits = append(edits, edit{c.spans[i-1].end, c.spans[i-1].end, fmt.Sprintf(";__detlab.L(%d)", c.spans[i].line)})
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
