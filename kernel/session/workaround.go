package session

import (
	"go/ast"
	"go/token"
	"reflect"
)

// Workarounds for two bugs of yaegi v0.16.1 with statements at the top
// level of a cell (yaegi compiles them in its global scope):
//
// A definition of several variables by one expression (a, b := f(),
// var a, b = f(), v, ok := m[k], x, ok := i.(T)) gives them symbols that
// are not marked global. A function reads such a variable through a frame
// relative to its caller: right when the function is called from the top
// level, wrong (another variable's slot: "reflect: call of
// reflect.Value.Index on int Value", index out of range, a wrong value)
// when it is called from another function, a closure or a goroutine.
// rebind gives each such variable a proper global symbol after its cell
// defined it.
//
// The same definition inside a block of a top-level statement (the body of
// a for loop) is never declared at all: "undefined: s". Such a statement
// runs inside a function literal, where yaegi compiles it as any function
// body (funcWrapped, instrument). It still reads and writes the cell's
// variables.

// rebindPrefix names the temporaries rebind goes through.
const rebindPrefix = "__detlab_rebind_"

// rebind redefines each of vars that one expression defined with several
// others as a single-variable definition, which yaegi declares global.
// The value moves through a temporary (two evaluations: within one, yaegi
// would resolve both sides to the new symbol), which is then cleared so
// that it holds nothing alive. Names that do not exist (the cell failed
// before defining them) are skipped.
func (s *Session) rebind(g *generation, vars []varInfo) {
	for _, v := range vars {
		if !v.multi || v.name == "_" || v.name == "ctx" {
			continue
		}
		tmp := rebindPrefix + v.name
		if _, err := g.safeEval(tmp + " := " + v.name); err != nil {
			continue
		}
		if _, err := g.safeEval(v.name + " := " + tmp); err != nil {
			continue
		}
		if p, err := g.safeEval("&" + tmp); err == nil && p.IsValid() && p.Kind() == reflect.Pointer && !p.IsNil() && p.Elem().CanSet() {
			p.Elem().Set(reflect.Zero(p.Elem().Type()))
		}
	}
}

// multiVars returns the variables of decls defined several by one
// expression.
func multiVars(decls []*decl) []varInfo {
	var out []varInfo
	for _, d := range decls {
		for _, v := range d.vars {
			if v.multi {
				out = append(out, v)
			}
		}
	}
	return out
}

// funcWrapped reports whether top-level statement st runs inside a
// function literal: it defines several variables by one expression inside
// a block or the header of an if, for or switch (what yaegi leaves
// undefined at the top level), and nothing in it (return, goto, defer)
// would mean something else inside a function literal. Function literals
// in st are function bodies already: yaegi compiles those right.
func funcWrapped(st ast.Stmt) bool {
	if as, ok := st.(*ast.AssignStmt); ok && as.Tok == token.DEFINE {
		return false // it defines the cell's variables: they must stay global
	}
	if _, ok := st.(*ast.DeclStmt); ok {
		return false
	}
	multi, unsafe := false, false
	ast.Inspect(st, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.ReturnStmt, *ast.DeferStmt:
			unsafe = true
		case *ast.BranchStmt:
			if x.Tok == token.GOTO {
				unsafe = true
			}
		case *ast.AssignStmt:
			if x.Tok == token.DEFINE && len(x.Lhs) > 1 && len(x.Rhs) == 1 {
				multi = true
			}
		case *ast.ValueSpec:
			if len(x.Names) > 1 && len(x.Values) == 1 {
				multi = true
			}
		}
		return !unsafe
	})
	return multi && !unsafe
}
