package session

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"sort"
	"strings"
)

// unitKind classifies one top-level piece of a cell.
type unitKind int

const (
	unitImport unitKind = iota
	unitDecl            // type, const, var, func, method
	unitStmt
)

// unit is one top-level piece of a cell: a byte range [start, end) of the
// source and its kind.
type unit struct {
	kind       unitKind
	start, end int
}

// cell is a parsed cell: its (rewritten) source and the pieces the session
// evaluates separately, each masked so that line and column numbers in
// interpreter messages are the cell's own.
type cell struct {
	src     string
	units   []unit
	imports []importSpec
	decls   []*decl
	// declSrc holds the cell's declarations masked to their positions; "" if
	// none.
	declSrc string
	// stmtSrc holds the cell's statements masked to their positions; "" if
	// none.
	stmtSrc string
	// stmts are the parsed top-level statements, in order.
	stmts []ast.Stmt
	// spans are the statements' byte ranges in src and first lines.
	spans []span
	// defined lists the variables that top-level statements define (x := …),
	// with a type hint where the source tells it.
	defined []varInfo
	// finalExpr is the byte range of the final expression statement, if the
	// cell ends with one (start < 0 when none).
	finalStart, finalEnd int
	// finalCall is the called function's text when the final expression is
	// a call ("fmt.Println").
	finalCall string
}

// span is where a top-level statement is in its cell.
type span struct{ start, end, line int }

// importSpec is one imported package.
type importSpec struct {
	Name, Path string // Name is "" for the default name
}

func (s importSpec) String() string {
	if s.Name != "" {
		return fmt.Sprintf("import %s %q", s.Name, s.Path)
	}
	return fmt.Sprintf("import %q", s.Path)
}

// declKind tells how a declaration behaves when it is redefined.
type declKind int

const (
	declType declKind = iota
	declFunc
	declMethod
	declConst
	declVar
)

// decl is one top-level declaration: what the session replays into a fresh
// interpreter generation.
type decl struct {
	kind declKind
	// names are the keys the declaration defines: "T" for a type, "f" for a
	// function, "T.M" for a method, every name of a const group or var spec.
	names []string
	// src is the declaration's text, replayable on its own.
	src string
	// line is the 1-based line where src starts in the cell that declared it.
	line int
	// cellNo numbers the cell that declared it (the session's count).
	cellNo int
	// vars holds, for var declarations, the variables with their type hints.
	vars []varInfo
	// off is the byte offset of the declaration in its cell.
	off int
	// chunkLine is the line where src starts in the chunk the current
	// interpreter generation compiled it from.
	chunkLine int
}

// varInfo is a global variable the session tracks to carry its value into
// a new interpreter generation.
type varInfo struct {
	name string
	off  int // byte offset of the defining statement in its cell
	// typ is the variable's type as Go source ("[]*T"), "" when unknown.
	typ string
	// multi is set when one expression defines several variables
	// (a, b := f(), var a, b = m[k]): see rebind.
	multi bool
}

// syntaxError is a parse error at a cell position.
type syntaxError struct {
	line, col int
	msg       string
	eof       bool // the error is at the end of the cell: more text may fix it
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%d:%d: %s", e.line, e.col, e.msg) }

// splitUnits cuts src into top-level units at semicolons (explicit or
// inserted at line ends) outside brackets, and classifies each.
func splitUnits(src string) ([]unit, error) {
	fset := token.NewFileSet()
	file := fset.AddFile("", -1, len(src))
	var serr error
	var s scanner.Scanner
	s.Init(file, []byte(src), func(pos token.Position, msg string) {
		if serr == nil {
			serr = &syntaxError{line: pos.Line, col: pos.Column, msg: msg}
		}
	}, scanner.ScanComments)
	var units []unit
	depth := 0
	start := -1
	var toks []token.Token // the first tokens of the current unit
	flush := func(end int) {
		if start >= 0 {
			units = append(units, unit{kind: classify(toks), start: start, end: end})
		}
		start = -1
		toks = toks[:0]
	}
	// A comment block starting at column 1 right above a unit is its doc
	// comment and belongs to it.
	docStart, docEnd := -1, 0
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		off := file.Offset(pos)
		if tok == token.COMMENT {
			if start < 0 {
				p := file.Position(pos)
				if p.Column != 1 {
					docStart = -1
					continue
				}
				if docStart < 0 || p.Line > docEnd+1 {
					docStart = off
				}
				docEnd = file.Position(file.Pos(off + len(lit) - 1)).Line
			}
			continue
		}
		switch tok {
		case token.LPAREN, token.LBRACE, token.LBRACK:
			depth++
		case token.RPAREN, token.RBRACE, token.RBRACK:
			depth--
		}
		if tok == token.SEMICOLON && depth <= 0 {
			end := off
			if lit == ";" {
				end = off + 1
			}
			flush(end)
			continue
		}
		if start < 0 {
			start = off
			if docStart >= 0 && file.Position(pos).Line == docEnd+1 {
				start = docStart
			}
			docStart = -1
		}
		if len(toks) < 8 {
			toks = append(toks, tok)
		}
	}
	flush(len(src))
	if serr != nil {
		return nil, serr
	}
	return units, nil
}

// classify tells a unit's kind from its first tokens.
func classify(toks []token.Token) unitKind {
	if len(toks) == 0 {
		return unitStmt
	}
	switch toks[0] {
	case token.IMPORT:
		return unitImport
	case token.TYPE, token.CONST, token.VAR:
		return unitDecl
	case token.FUNC:
		if len(toks) > 1 && toks[1] == token.IDENT {
			return unitDecl // func f(…)
		}
		if len(toks) > 1 && toks[1] == token.LPAREN {
			// func (r T) M(…) is a method; func(…) {…}() is a statement.
			// A receiver list is followed by an identifier, a literal's
			// parameter list by '{', a result type or '('.
			d := 0
			for i := 1; i < len(toks); i++ {
				switch toks[i] {
				case token.LPAREN:
					d++
				case token.RPAREN:
					d--
					if d == 0 {
						if i+2 < len(toks) && toks[i+1] == token.IDENT && toks[i+2] == token.LPAREN {
							return unitDecl
						}
						if i+2 < len(toks) && toks[i+1] == token.IDENT && toks[i+2] == token.LBRACK {
							return unitDecl // generic method-like form; let the parser judge
						}
						return unitStmt
					}
				}
			}
		}
	}
	return unitStmt
}

// mask returns src with every byte outside the given ranges replaced by a
// space, newlines kept: evaluating the result reports the cell's own line
// and column numbers.
func mask(src string, ranges [][2]int) string {
	b := []byte(src)
	keep := make([]bool, len(b))
	for _, r := range ranges {
		for i := r[0]; i < r[1] && i < len(b); i++ {
			keep[i] = true
		}
	}
	for i := range b {
		if !keep[i] && b[i] != '\n' {
			b[i] = ' '
		}
	}
	return strings.TrimRight(string(b), " \n\t")
}

// parseCell splits a cell into imports, declarations and statements.
// cellNo numbers the cell for its declarations.
func parseCell(src string, cellNo int) (*cell, error) {
	src = rewriteGo(src)
	units, err := splitUnits(src)
	if err != nil {
		return nil, err
	}
	c := &cell{src: src, units: units, finalStart: -1}
	var declRanges, importRanges, stmtRanges [][2]int
	for _, u := range units {
		switch u.kind {
		case unitImport:
			importRanges = append(importRanges, [2]int{u.start, u.end})
		case unitDecl:
			declRanges = append(declRanges, [2]int{u.start, u.end})
		default:
			stmtRanges = append(stmtRanges, [2]int{u.start, u.end})
		}
	}
	fset := token.NewFileSet()
	// Imports and declarations parse as a file. The package clause takes
	// a line of its own (so that a doc comment on the cell's first line
	// stays one); line numbers are shifted back by one.
	if len(importRanges)+len(declRanges) > 0 {
		body := mask(src, append(append([][2]int{}, importRanges...), declRanges...))
		const fileHead = "package p\n"
		f, err := parser.ParseFile(fset, "", fileHead+body, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, cellSyntaxError(err, 0, src, 1)
		}
		const off = len(fileHead)
		for _, is := range f.Imports {
			p := strings.Trim(is.Path.Value, "\"`")
			spec := importSpec{Path: p}
			if is.Name != nil {
				spec.Name = is.Name.Name
			}
			c.imports = append(c.imports, spec)
		}
		for _, d := range f.Decls {
			for _, dd := range declsOf(d, fset, src, off, cellNo) {
				dd.off = int(d.Pos()) - fset.File(d.Pos()).Base() - off
				c.decls = append(c.decls, dd)
			}
		}
		if len(declRanges) > 0 {
			c.declSrc = mask(src, declRanges)
		}
	}
	if len(stmtRanges) > 0 {
		body := mask(src, stmtRanges)
		const prefix = "package p;func _(){"
		f, err := parser.ParseFile(fset, "", prefix+body+"\n}", parser.SkipObjectResolution)
		if err != nil {
			return nil, cellSyntaxError(err, len(prefix), src, 0)
		}
		fn := f.Decls[len(f.Decls)-1].(*ast.FuncDecl)
		base := fset.File(fn.Pos()).Base()
		c.stmts = fn.Body.List
		c.stmtSrc = body
		offset := func(p token.Pos) int { return int(p) - base - len(prefix) }
		for _, st := range c.stmts {
			c.spans = append(c.spans, span{offset(st.Pos()), offset(st.End()), fset.Position(st.Pos()).Line})
			if as, ok := st.(*ast.AssignStmt); ok && as.Tok == token.DEFINE {
				for i, l := range as.Lhs {
					id, ok := l.(*ast.Ident)
					if !ok || id.Name == "_" {
						continue
					}
					c.defined = append(c.defined, varInfo{name: id.Name, off: offset(as.Pos()), typ: hintOf(as.Rhs, i, len(as.Lhs), src, offset),
						multi: len(as.Lhs) > 1 && len(as.Rhs) == 1})
				}
			}
		}
		if n := len(c.stmts); n > 0 {
			if es, ok := c.stmts[n-1].(*ast.ExprStmt); ok {
				c.finalStart, c.finalEnd = offset(es.Pos()), offset(es.End())
				if call, ok := ast.Unparen(es.X).(*ast.CallExpr); ok {
					c.finalCall = src[offset(call.Fun.Pos()):offset(call.Fun.End())]
				}
			}
		}
	}
	return c, nil
}

// cellSyntaxError turns a parser error on prefixed source into one at cell
// positions.
func cellSyntaxError(err error, prefixLen int, src string, lineShift int) error {
	var list scanner.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		e := list[0]
		e.Pos.Line -= lineShift
		col := e.Pos.Column
		if e.Pos.Line == 1 {
			col -= prefixLen
		}
		lines := strings.Count(src, "\n") + 1
		se := &syntaxError{line: e.Pos.Line, col: col, msg: e.Msg, eof: strings.Contains(e.Msg, "EOF")}
		if e.Pos.Line > lines {
			// Past the cell: the parser reached its end wanting more.
			last := src[strings.LastIndex(src, "\n")+1:]
			se.line, se.col, se.eof = lines, len(last)+1, true
			se.msg = strings.Replace(e.Msg, "found '}'", "found end of cell", 1)
		}
		return se
	}
	return err
}

// declsOf turns one parsed declaration into session declarations. off is
// the length of the prefix the parsed text had before the cell's bytes.
func declsOf(d ast.Decl, fset *token.FileSet, src string, off, cellNo int) []*decl {
	base := fset.File(d.Pos()).Base()
	text := func(from, to token.Pos) string { return src[int(from)-base-off : int(to)-base-off] }
	line := func(p token.Pos) int { return fset.Position(p).Line - 1 } // the package clause's line
	switch d := d.(type) {
	case *ast.FuncDecl:
		from := d.Pos()
		if d.Doc != nil {
			from = d.Doc.Pos()
		}
		if d.Recv != nil && len(d.Recv.List) > 0 {
			return []*decl{{kind: declMethod, names: []string{recvName(d.Recv.List[0].Type) + "." + d.Name.Name},
				src: text(from, d.End()), line: line(from), cellNo: cellNo}}
		}
		return []*decl{{kind: declFunc, names: []string{d.Name.Name}, src: text(from, d.End()), line: line(from), cellNo: cellNo}}
	case *ast.GenDecl:
		switch d.Tok {
		case token.TYPE:
			var out []*decl
			for _, sp := range d.Specs {
				ts := sp.(*ast.TypeSpec)
				from := ts.Pos()
				if ts.Doc != nil {
					from = ts.Doc.Pos()
				} else if !d.Lparen.IsValid() && d.Doc != nil {
					from = d.Doc.Pos()
				}
				body := text(ts.Pos(), ts.End())
				doc := ""
				if from != ts.Pos() {
					doc = text(from, ts.Pos())
				}
				out = append(out, &decl{kind: declType, names: []string{ts.Name.Name}, src: doc + "type " + body, line: line(from), cellNo: cellNo})
			}
			return out
		case token.CONST:
			var names []string
			for _, sp := range d.Specs {
				for _, n := range sp.(*ast.ValueSpec).Names {
					if n.Name != "_" {
						names = append(names, n.Name)
					}
				}
			}
			return []*decl{{kind: declConst, names: names, src: text(d.Pos(), d.End()), line: line(d.Pos()), cellNo: cellNo}}
		case token.VAR:
			var out []*decl
			for _, sp := range d.Specs {
				vs := sp.(*ast.ValueSpec)
				dd := &decl{kind: declVar, src: "var " + text(vs.Pos(), vs.End()), line: line(vs.Pos()), cellNo: cellNo}
				for i, n := range vs.Names {
					if n.Name == "_" {
						continue
					}
					dd.names = append(dd.names, n.Name)
					typ := ""
					if vs.Type != nil {
						typ = text(vs.Type.Pos(), vs.Type.End())
					} else {
						typ = hintOf(vs.Values, i, len(vs.Names), src, func(p token.Pos) int { return int(p) - base - off })
					}
					dd.vars = append(dd.vars, varInfo{name: n.Name, typ: typ, multi: len(vs.Names) > 1 && len(vs.Values) == 1})
				}
				out = append(out, dd)
			}
			return out
		}
	}
	return nil
}

// recvName is the base type name of a method receiver: T for T, *T, T[K].
func recvName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return "?"
		}
	}
}

// hintOf guesses the type of the i-th of n variables assigned from rhs, as
// Go source, from the shape of the expression: T{…} is T, &T{…} is *T,
// func literals carry their type. Calls are resolved later against declared
// functions (the hint is then "call:f"). "" means unknown.
func hintOf(rhs []ast.Expr, i, n int, src string, off func(token.Pos) int) string {
	if len(rhs) != n || i >= len(rhs) {
		if len(rhs) == 1 {
			if call, ok := ast.Unparen(rhs[0]).(*ast.CallExpr); ok {
				if id, ok := call.Fun.(*ast.Ident); ok {
					return fmt.Sprintf("call:%s:%d", id.Name, i)
				}
			}
		}
		return ""
	}
	text := func(e ast.Node) string { return src[off(e.Pos()):off(e.End())] }
	switch x := ast.Unparen(rhs[i]).(type) {
	case *ast.CompositeLit:
		if x.Type != nil {
			return text(x.Type)
		}
	case *ast.UnaryExpr:
		if cl, ok := x.X.(*ast.CompositeLit); ok && x.Op == token.AND && cl.Type != nil {
			return "*" + text(cl.Type)
		}
	case *ast.FuncLit:
		return text(x.Type)
	case *ast.CallExpr:
		if id, ok := x.Fun.(*ast.Ident); ok {
			if id.Name == "new" && len(x.Args) == 1 {
				return "*" + text(x.Args[0])
			}
			return "call:" + id.Name + ":0"
		}
	}
	return ""
}

// rewriteGo rewrites every `go f(args)` statement into
// `__detlab.Go(f, args)` so that a panic in the goroutine is recovered and
// reported instead of killing the kernel. Arguments are still evaluated
// when the statement runs. Calls with a trailing ... keep their form inside
// a closure. Line numbers are unchanged.
func rewriteGo(src string) string {
	if !strings.Contains(src, "go") {
		return src
	}
	// Parse leniently: the whole cell as a function body (declarations
	// other than func are legal there) and as a file. Either may fail on a
	// mixed cell; go statements found by either are rewritten.
	type edit struct {
		from, to int
		text     string
	}
	var edits []edit
	seen := map[int]bool{}
	collect := func(f *ast.File, base, prefix int) {
		ast.Inspect(f, func(n ast.Node) bool {
			g, ok := n.(*ast.GoStmt)
			if !ok {
				return true
			}
			at := func(p token.Pos) int { return int(p) - base - prefix }
			start := at(g.Pos())
			if seen[start] || start < 0 {
				return true
			}
			seen[start] = true
			call := g.Call
			if call.Ellipsis.IsValid() {
				edits = append(edits,
					edit{start, at(call.Pos()), "__detlab.Go(func() { "},
					edit{at(call.End()), at(call.End()), " })"})
				return true
			}
			edits = append(edits, edit{start, at(call.Fun.Pos()), "__detlab.Go("})
			if len(call.Args) == 0 {
				edits = append(edits, edit{at(call.Fun.End()), at(call.Rparen) + 1, ")"})
			} else {
				edits = append(edits, edit{at(call.Fun.End()), at(call.Lparen) + 1, ", "})
			}
			return true
		})
	}
	// Try each unit on its own: declarations as a file, statements as a
	// function body.
	units, err := splitUnits(src)
	if err != nil {
		return src
	}
	for _, u := range units {
		fset := token.NewFileSet()
		piece := src[u.start:u.end]
		var prefix, suffix string
		if u.kind == unitStmt {
			prefix, suffix = "package p;func _(){", "\n}"
		} else {
			prefix = "package p;"
		}
		f, err := parser.ParseFile(fset, "", prefix+piece+suffix, parser.SkipObjectResolution)
		if err != nil || f == nil {
			continue
		}
		collect(f, fset.File(f.Pos()).Base(), len(prefix)-u.start)
	}
	if len(edits) == 0 {
		return src
	}
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].from < edits[j].from })
	var b strings.Builder
	last := 0
	for _, e := range edits {
		if e.from < last {
			continue
		}
		b.WriteString(src[last:e.from])
		b.WriteString(e.text)
		last = e.to
	}
	b.WriteString(src[last:])
	return b.String()
}
