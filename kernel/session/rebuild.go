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
	"strings"

	"github.com/traefik/yaegi/interp"
)

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
		if _, err := ng.safeEval(im.String()); err != nil {
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
		if _, err := ng.safeEval(`import __detlab_carry "` + carryPath + `"`); err != nil {
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
		np, err := ng.safeEval("&" + cv.v.name)
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
	s.rebind(ng, multiVars(cellDecls))
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
		v, err := g.safeEval("*new(" + name + ")")
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
