package session

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Inspect returns the signature and documentation of the name under the
// cursor (in code points): a package member (documentation read from the
// package's source when it can be found, else the signature from the
// symbol table), a declaration of the notebook, a variable and its value,
// a builtin or a keyword.
func (s *Session) Inspect(code string, cursor int, detail int) (text string, found bool) {
	defer func() {
		if r := recover(); r != nil {
			editorPanic(r)
			text, found = "", false
		}
	}()
	off := byteOffset(code, cursor)
	from := identBefore(code, off)
	to := identAfter(code, off)
	if from == to && off > 0 {
		// The cursor just after "f(": inspect f.
		trim := strings.TrimRight(code[:off], " (")
		from, to = identBefore(code, len(trim)), len(trim)
	}
	if from == to {
		return "", false
	}
	name := code[from:to]
	x := ""
	if from > 0 && code[from-1] == '.' {
		x = chainBefore(code, from-1)
	}
	if x != "" {
		return s.inspectMember(code, x, name, detail)
	}
	return s.inspectName(code, name, detail)
}

// inspectName explains a bare identifier.
func (s *Session) inspectName(code, name string, detail int) (string, bool) {
	if path, ok := s.importsInScope(code)[name]; ok {
		if p := packageDoc(path); p != nil {
			return fmt.Sprintf("package %s // import %q\n\n%s", p.Name, path, p.Doc), true
		}
		return fmt.Sprintf("package %s // import %q", name, path), true
	}
	if s.mu.TryLock() {
		d := s.findDecl(name)
		var v *varInfo
		for i := range s.vars {
			if s.vars[i].name == name {
				v = &s.vars[i]
			}
		}
		s.mu.Unlock()
		if d != nil && d.kind != declVar {
			return declText(d, detail), true
		}
		if v != nil || name == "ctx" {
			if val, hint, ok := s.valueOf(name); ok {
				t := hint
				if t == "" {
					t = val.Type().String()
				}
				return fmt.Sprintf("var %s %s = %s", name, t, truncate(formatValue(valueInterface(val)), 2000)), true
			}
		}
	}
	if c, err := parseCell(code, 0); err == nil {
		for _, d := range c.decls {
			for _, n := range d.names {
				if n == name && d.kind != declVar {
					return declText(d, detail), true
				}
			}
		}
	}
	if p := packageDoc("builtin"); p != nil {
		if t, ok := docFor(p, name, "builtin"); ok {
			return t, true
		}
	}
	for _, k := range goKeywords {
		if k == name {
			return fmt.Sprintf("%s is a Go keyword: https://go.dev/ref/spec#Keywords", name), true
		}
	}
	return "", false
}

// inspectMember explains x.name: a package member or a field or method of
// a variable's value.
func (s *Session) inspectMember(code, x, name string, detail int) (string, bool) {
	if !strings.Contains(x, ".") {
		path, ok := s.importsInScope(code)[x]
		if !ok {
			path = s.knownPackage(x)
		}
		if path != "" {
			tab := packageTable(path)
			sym, ok := tab[name]
			if !ok {
				return "", false
			}
			sig := symbolSignature(x, name, sym)
			if p := packageDoc(path); p != nil {
				if t, ok := docFor(p, name, x); ok {
					return t, true
				}
			}
			return sig, true
		}
	}
	v, hint, ok := s.valueOf(x)
	if !ok {
		return "", false
	}
	if base := baseTypeName(hint); base != "" && s.mu.TryLock() {
		d := s.findDecl(base + "." + name)
		s.mu.Unlock()
		if d != nil {
			return declText(d, detail), true
		}
	}
	t := v.Type()
	if v.Kind() == reflect.Interface && !v.IsNil() {
		t = v.Elem().Type()
	}
	base := t
	for base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if m, ok := t.MethodByName(name); ok {
		sig := fmt.Sprintf("func (%s) %s%s", t, name, strings.TrimPrefix(m.Type.String(), "func"))
		if base.PkgPath() != "" {
			if p := packageDoc(base.PkgPath()); p != nil {
				if d, ok := docFor(p, base.Name()+"."+name, p.Name); ok {
					return d, true
				}
			}
		}
		return sig, true
	}
	if m, ok := reflect.PointerTo(t).MethodByName(name); ok && t.Kind() != reflect.Pointer {
		return fmt.Sprintf("func (*%s) %s%s", t, name, strings.TrimPrefix(m.Type.String(), "func")), true
	}
	if base.Kind() == reflect.Struct {
		if f, ok := base.FieldByName(name); ok {
			text := fmt.Sprintf("field %s %s", name, f.Type)
			if base.PkgPath() != "" {
				if p := packageDoc(base.PkgPath()); p != nil {
					if d := fieldDoc(p, base.Name(), name); d != "" {
						text += "\n\n" + d
					}
				}
			}
			return text, true
		}
	}
	return "", false
}

func valueInterface(v reflect.Value) interface{} {
	if v.CanInterface() {
		return v.Interface()
	}
	return v.String()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// declText shows a notebook declaration: a function's signature and doc
// comment (the whole source with detail > 0), a type's definition.
func declText(d *decl, detail int) string {
	if detail > 0 {
		return d.src
	}
	const prefix = "package p\n" // on its own line, so that a doc comment stays one
	f, err := parser.ParseFile(token.NewFileSet(), "", prefix+d.src, parser.ParseComments)
	if err != nil || len(f.Decls) == 0 {
		return d.src
	}
	switch x := f.Decls[0].(type) {
	case *ast.FuncDecl:
		from := x.Pos()
		to := x.End()
		if x.Body != nil {
			to = x.Body.Lbrace
		}
		sig := strings.TrimSpace((prefix + d.src)[from-1 : to-1])
		if x.Doc != nil {
			return sig + "\n\n" + strings.TrimSpace(x.Doc.Text())
		}
		return sig
	case *ast.GenDecl:
		text := strings.TrimSpace((prefix + d.src)[x.Pos()-1 : x.End()-1])
		if x.Doc != nil {
			return text + "\n\n" + strings.TrimSpace(x.Doc.Text())
		}
		return text
	}
	return d.src
}

// symbolSignature describes a table symbol from its reflect value.
func symbolSignature(pkg, name string, v reflect.Value) string {
	switch {
	case v.Kind() == reflect.Func:
		return fmt.Sprintf("func %s.%s%s", pkg, name, strings.TrimPrefix(v.Type().String(), "func"))
	case v.Kind() == reflect.Pointer && v.IsNil():
		return fmt.Sprintf("type %s.%s %s", pkg, name, v.Type().Elem().Kind())
	case v.Kind() == reflect.Pointer:
		return fmt.Sprintf("var %s.%s %s", pkg, name, v.Type().Elem())
	default:
		return fmt.Sprintf("const %s.%s = %v", pkg, name, v)
	}
}

var (
	docMu    sync.Mutex
	docCache = map[string]*doc.Package{}
)

// packageDoc returns the documentation of an import path, read from its
// source: $GOROOT/src for the standard library, the module cache for
// dependencies, `go list` otherwise. nil when the source is not found.
func packageDoc(path string) *doc.Package {
	docMu.Lock()
	defer docMu.Unlock()
	if p, ok := docCache[path]; ok {
		return p
	}
	var p *doc.Package
	if dir := sourceDir(path); dir != "" {
		p = parseDocDir(dir, path)
	}
	docCache[path] = p
	return p
}

// parseDocDir reads the package documentation in dir.
func parseDocDir(dir, path string) *doc.Package {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			continue
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil
	}
	// Keep the files of the package named most often (ignore main-tagged
	// generators).
	count := map[string]int{}
	for _, f := range files {
		count[f.Name.Name]++
	}
	best := ""
	for n, c := range count {
		if c > count[best] {
			best = n
		}
	}
	var keep []*ast.File
	for _, f := range files {
		if f.Name.Name == best {
			keep = append(keep, f)
		}
	}
	mode := doc.PreserveAST
	if path == "builtin" {
		mode |= doc.AllDecls
	}
	p, err := doc.NewFromFiles(fset, keep, path, mode)
	if err != nil {
		return nil
	}
	docFsets[p] = fset
	return p
}

var docFsets = map[*doc.Package]*token.FileSet{}

// sourceDir finds the source directory of an import path.
func sourceDir(path string) string {
	if !strings.Contains(strings.Split(path, "/")[0], ".") {
		dir := filepath.Join(goroot(), "src", path)
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		return ""
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range append([]*debug.Module{&bi.Main}, bi.Deps...) {
			if m.Path == "" || (path != m.Path && !strings.HasPrefix(path, m.Path+"/")) {
				continue
			}
			if m.Replace != nil {
				m = m.Replace
			}
			if m.Version == "" || m.Version == "(devel)" {
				break
			}
			dir := filepath.Join(modCache(), escapeModule(m.Path)+"@"+m.Version, strings.TrimPrefix(path, m.Path))
			if _, err := os.Stat(dir); err == nil {
				return dir
			}
		}
	}
	return goList(path)
}

// goroot is the Go root, from the environment, the runtime or `go env`.
func goroot() string {
	if r := os.Getenv("GOROOT"); r != "" {
		return r
	}
	if r := runtime.GOROOT(); r != "" {
		if _, err := os.Stat(filepath.Join(r, "src", "fmt")); err == nil {
			return r
		}
	}
	return goEnv("GOROOT")
}

func modCache() string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	if c := goEnv("GOMODCACHE"); c != "" {
		return c
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		return filepath.Join(strings.Split(gp, string(os.PathListSeparator))[0], "pkg", "mod")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go", "pkg", "mod")
}

var (
	goEnvOnce sync.Once
	goEnvVals map[string]string
)

// goEnv asks the go command, when there is one, once.
func goEnv(name string) string {
	goEnvOnce.Do(func() {
		goEnvVals = map[string]string{}
		out, err := runGo("env", "-json", "GOROOT", "GOMODCACHE")
		if err == nil {
			_ = json.Unmarshal(out, &goEnvVals)
		}
	})
	return goEnvVals[name]
}

// goList asks the go command for a package's directory.
func goList(path string) string {
	out, err := runGo("list", "-f", "{{.Dir}}", path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func runGo(args ...string) ([]byte, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return nil, err
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("go %s: timed out", args[0])
	}
}

// escapeModule applies the module cache's case escaping (!x for X).
func escapeModule(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			b.WriteRune(r + ('a' - 'A'))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// docFor returns the declaration and doc comment of name in p: a function,
// a type, a method ("T.M"), a variable or a constant.
func docFor(p *doc.Package, name, qual string) (string, bool) {
	docMu.Lock()
	fset := docFsets[p]
	docMu.Unlock()
	show := func(decl ast.Node, docText string) string {
		var b bytes.Buffer
		switch d := decl.(type) {
		case *ast.FuncDecl:
			d2 := *d
			d2.Body, d2.Doc = nil, nil
			printer.Fprint(&b, fset, &d2)
		case *ast.GenDecl:
			d2 := *d
			d2.Doc = nil
			printer.Fprint(&b, fset, &d2)
		}
		text := b.String()
		if docText != "" {
			text += "\n\n" + strings.TrimSpace(docText)
		}
		return text
	}
	tname, mname, isMethod := strings.Cut(name, ".")
	for _, f := range p.Funcs {
		if f.Name == name {
			return show(f.Decl, f.Doc), true
		}
	}
	for _, t := range p.Types {
		if isMethod && t.Name == tname {
			for _, m := range t.Methods {
				if m.Name == mname {
					return show(m.Decl, m.Doc), true
				}
			}
		}
		if t.Name == name {
			return show(t.Decl, t.Doc), true
		}
		for _, f := range t.Funcs {
			if f.Name == name {
				return show(f.Decl, f.Doc), true
			}
		}
		for _, v := range append(append([]*doc.Value{}, t.Vars...), t.Consts...) {
			for _, n := range v.Names {
				if n == name {
					return show(v.Decl, v.Doc), true
				}
			}
		}
	}
	for _, v := range append(append([]*doc.Value{}, p.Vars...), p.Consts...) {
		for _, n := range v.Names {
			if n == name {
				return show(v.Decl, v.Doc), true
			}
		}
	}
	return "", false
}

// fieldDoc returns the comment of a struct field.
func fieldDoc(p *doc.Package, typeName, field string) string {
	for _, t := range p.Types {
		if t.Name != typeName {
			continue
		}
		for _, sp := range t.Decl.Specs {
			ts, ok := sp.(*ast.TypeSpec)
			if !ok {
				continue
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, f := range st.Fields.List {
				for _, n := range f.Names {
					if n.Name == field {
						if f.Doc != nil {
							return strings.TrimSpace(f.Doc.Text())
						}
						if f.Comment != nil {
							return strings.TrimSpace(f.Comment.Text())
						}
					}
				}
			}
		}
	}
	return ""
}
