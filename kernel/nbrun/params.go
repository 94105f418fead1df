package nbrun

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
)

// Param is one -p name=value.
type Param struct {
	Name, Value string
}

// ParseParam parses "name=value".
func ParseParam(s string) (Param, error) {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || !token.IsIdentifier(name) {
		return Param{}, fmt.Errorf("nbrun: parameter %q is not name=value with a Go identifier", s)
	}
	return Param{Name: name, Value: value}, nil
}

// InjectParameters follows papermill: a code cell tagged "injected-parameters"
// holding one assignment per parameter is put after the cell tagged
// "parameters" (at the top when there is none), replacing an earlier injected
// cell. Each value is written as a Go literal of the kind the parameters cell
// declares for that name (strings quoted, numbers and booleans as they are);
// for a name the parameters cell does not declare, the kind is guessed
// (true/false, a number, else a string) and the line declares it with var.
func InjectParameters(nb *Notebook, params []Param) error {
	if len(params) == 0 {
		return nil
	}
	kinds := map[string]string{}
	for _, c := range nb.Cells {
		if c.CellType == "code" && c.HasTag("parameters") {
			kinds = declaredKinds(c.Source)
			break
		}
	}
	var b strings.Builder
	b.WriteString("// Parameters\n")
	for _, p := range params {
		kind, declared := kinds[p.Name]
		if !declared {
			kind = guessKind(p.Value)
		}
		lit, err := literal(kind, p.Value)
		if err != nil {
			return fmt.Errorf("nbrun: parameter %s: %w", p.Name, err)
		}
		if declared {
			fmt.Fprintf(&b, "%s = %s\n", p.Name, lit)
		} else {
			fmt.Fprintf(&b, "var %s = %s\n", p.Name, lit)
		}
	}
	cell := &Cell{CellType: "code", ID: newCellID(), Source: b.String(),
		Metadata: map[string]any{"tags": []any{"injected-parameters"}}}
	cells := make([]*Cell, 0, len(nb.Cells)+1)
	for _, c := range nb.Cells {
		if !c.HasTag("injected-parameters") {
			cells = append(cells, c)
		}
	}
	pos := 0
	for i, c := range cells {
		if c.CellType == "code" && c.HasTag("parameters") {
			pos = i + 1
			break
		}
	}
	cells = append(cells[:pos], append([]*Cell{cell}, cells[pos:]...)...)
	nb.Cells = cells
	return nil
}

func guessKind(v string) string {
	switch {
	case v == "true" || v == "false":
		return "bool"
	case isInt(v):
		return "int"
	case isFloat(v):
		return "float"
	}
	return "string"
}

func isInt(v string) bool   { _, err := strconv.ParseInt(v, 0, 64); return err == nil }
func isFloat(v string) bool { _, err := strconv.ParseFloat(v, 64); return err == nil }

func literal(kind, v string) (string, error) {
	switch kind {
	case "string":
		return strconv.Quote(v), nil
	case "bool":
		if v != "true" && v != "false" {
			return "", fmt.Errorf("%q is not true or false", v)
		}
	case "int":
		if !isInt(v) {
			return "", fmt.Errorf("%q is not an integer", v)
		}
	case "float":
		if !isFloat(v) {
			return "", fmt.Errorf("%q is not a number", v)
		}
	}
	return v, nil
}

// declaredKinds finds `name := lit`, `var name = lit` and `var name T` in a
// parameters cell and returns each name's kind: string, bool, int or float.
func declaredKinds(src string) map[string]string {
	kinds := map[string]string{}
	// The cell may hold statements (:=) or declarations; parse it as a function body.
	f, err := parser.ParseFile(token.NewFileSet(), "params.go", "package p\nfunc _() {\n"+src+"\n}\n", 0)
	if err != nil {
		// A cell of top-level declarations only (e.g. with const) parses as a file.
		f, err = parser.ParseFile(token.NewFileSet(), "params.go", "package p\n"+src, 0)
		if err != nil {
			return kinds
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE {
				for i, l := range n.Lhs {
					if id, ok := l.(*ast.Ident); ok && i < len(n.Rhs) {
						if k := exprKind(n.Rhs[i]); k != "" {
							kinds[id.Name] = k
						}
					}
				}
			}
		case *ast.ValueSpec:
			for i, id := range n.Names {
				k := typeKind(n.Type)
				if k == "" && i < len(n.Values) {
					k = exprKind(n.Values[i])
				}
				if k != "" {
					kinds[id.Name] = k
				}
			}
		}
		return true
	})
	return kinds
}

func exprKind(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		switch e.Kind {
		case token.STRING:
			return "string"
		case token.INT:
			return "int"
		case token.FLOAT:
			return "float"
		}
	case *ast.Ident:
		if e.Name == "true" || e.Name == "false" {
			return "bool"
		}
	case *ast.UnaryExpr:
		return exprKind(e.X)
	case *ast.CallExpr: // float64(3), int64(2), string("x")
		if k := typeKind(e.Fun); k != "" {
			return k
		}
	}
	return ""
}

func typeKind(t ast.Expr) string {
	id, ok := t.(*ast.Ident)
	if !ok {
		return ""
	}
	switch id.Name {
	case "string":
		return "string"
	case "bool":
		return "bool"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "uintptr":
		return "int"
	case "float32", "float64":
		return "float"
	}
	return ""
}
