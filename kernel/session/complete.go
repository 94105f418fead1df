package session

import (
	"go/scanner"
	"go/token"
	"reflect"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/traefik/yaegi/stdlib"

	"github.com/detlab/detlab/kernel/symbols"
)

// goKeywords and goBuiltins are offered when completing a bare name.
var (
	goKeywords = []string{"break", "case", "chan", "const", "continue", "default", "defer", "else",
		"fallthrough", "for", "func", "go", "goto", "if", "import", "interface", "map", "package",
		"range", "return", "select", "struct", "switch", "type", "var"}
	goBuiltins = []string{"any", "append", "bool", "byte", "cap", "clear", "close", "comparable", "complex",
		"complex128", "complex64", "copy", "delete", "error", "false", "float32", "float64", "imag",
		"int", "int16", "int32", "int64", "int8", "iota", "len", "make", "max", "min", "new", "nil",
		"panic", "print", "println", "real", "recover", "rune", "string", "true", "uint", "uint16",
		"uint32", "uint64", "uint8", "uintptr"}
)

// byteOffset converts a cursor in code points (Jupyter's unit) to a byte
// offset, clamped to the code.
func byteOffset(code string, cursor int) int {
	if cursor <= 0 {
		return 0
	}
	i := 0
	for n := 0; n < cursor && i < len(code); n++ {
		_, w := utf8.DecodeRuneInString(code[i:])
		i += w
	}
	return i
}

// runeOffset converts a byte offset to code points.
func runeOffset(code string, off int) int { return utf8.RuneCountInString(code[:off]) }

func isIdentRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// identBefore returns the start of the identifier ending at off.
func identBefore(code string, off int) int {
	for off > 0 {
		r, w := utf8.DecodeLastRuneInString(code[:off])
		if !isIdentRune(r) {
			break
		}
		off -= w
	}
	return off
}

// identAfter returns the end of the identifier starting at or before off.
func identAfter(code string, off int) int {
	for off < len(code) {
		r, w := utf8.DecodeRuneInString(code[off:])
		if !isIdentRune(r) {
			break
		}
		off += w
	}
	return off
}

// chainBefore returns the selector chain ("a.b.c") ending just before the
// dot at dot, or "".
func chainBefore(code string, dot int) string {
	end := dot
	start := end
	for {
		s := identBefore(code, start)
		if s == start {
			return ""
		}
		start = s
		if start > 0 && code[start-1] == '.' {
			start--
			continue
		}
		break
	}
	return code[start:end]
}

// Complete returns the completions for the identifier before cursor (in
// code points): names in scope, package members after `pkg.`, and fields and
// methods after `v.` for variables whose value the session holds. start and
// end delimit the text the matches replace, in code points.
func (s *Session) Complete(code string, cursor int) (matches []string, start, end int) {
	defer func() {
		if r := recover(); r != nil {
			editorPanic(r)
			matches, start, end = nil, cursor, cursor
		}
	}()
	off := byteOffset(code, cursor)
	from := identBefore(code, off)
	prefix := code[from:off]
	start, end = runeOffset(code, from), cursor
	var cands []string
	if from > 0 && code[from-1] == '.' {
		x := chainBefore(code, from-1)
		if x == "" {
			return nil, start, end
		}
		cands = s.members(code, x)
	} else {
		cands = s.scopeNames(code)
	}
	seen := map[string]bool{}
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) && !seen[c] {
			seen[c] = true
			matches = append(matches, c)
		}
	}
	sort.Strings(matches)
	return matches, start, end
}

// packageTable returns the symbol table for an import path.
func packageTable(path string) map[string]reflect.Value {
	base := path
	if i := strings.LastIndex(path, "/"); i >= 0 {
		base = path[i+1:]
	}
	for _, tables := range []map[string]map[string]reflect.Value{symbols.Symbols, stdlib.Symbols} {
		if t, ok := tables[path+"/"+base]; ok {
			return t
		}
		for k, t := range tables {
			if strings.HasPrefix(k, path+"/") && !strings.Contains(k[len(path)+1:], "/") {
				return t
			}
		}
	}
	return nil
}

// packageName is the name a package is imported under by default.
func packageName(path string) string {
	for _, tables := range []map[string]map[string]reflect.Value{symbols.Symbols, stdlib.Symbols} {
		for k := range tables {
			if strings.HasPrefix(k, path+"/") && !strings.Contains(k[len(path)+1:], "/") {
				return k[len(path)+1:]
			}
		}
	}
	if i := strings.LastIndex(path, "/"); i >= 0 {
		return path[i+1:]
	}
	return path
}

// importsInScope maps package names to import paths: those imported so far
// and those the code being edited imports.
func (s *Session) importsInScope(code string) map[string]string {
	m := map[string]string{}
	add := func(im importSpec) {
		name := im.Name
		if name == "" {
			name = packageName(im.Path)
		}
		if name != "_" && name != "." {
			m[name] = im.Path
		}
	}
	if s.mu.TryLock() {
		for _, im := range s.imports {
			add(im)
		}
		s.mu.Unlock()
	}
	if c, err := parseCell(code, 0); err == nil {
		for _, im := range c.imports {
			add(im)
		}
	} else {
		for _, im := range scanImports(code) {
			add(im)
		}
	}
	return m
}

// scanImports finds import specs in code that may not parse.
func scanImports(code string) []importSpec {
	var out []importSpec
	var sc scanner.Scanner
	fset := token.NewFileSet()
	sc.Init(fset.AddFile("", -1, len(code)), []byte(code), nil, 0)
	inImport, group := false, false
	name := ""
	for {
		_, tok, lit := sc.Scan()
		switch {
		case tok == token.EOF:
			return out
		case tok == token.IMPORT:
			inImport, group, name = true, false, ""
		case inImport && tok == token.LPAREN:
			group = true
		case inImport && tok == token.IDENT:
			name = lit
		case inImport && tok == token.STRING:
			out = append(out, importSpec{Name: name, Path: strings.Trim(lit, "\"`")})
			name = ""
			if !group {
				inImport = false
			}
		case inImport && tok == token.RPAREN:
			inImport = false
		}
	}
}

// scopeNames lists the names a bare identifier may complete to.
func (s *Session) scopeNames(code string) []string {
	out := append(append([]string{}, goKeywords...), goBuiltins...)
	out = append(out, "ctx")
	out = append(out, knownPackageNames()...)
	for name := range s.importsInScope(code) {
		out = append(out, name)
	}
	if s.mu.TryLock() {
		for _, d := range s.decls {
			for _, n := range d.names {
				if !strings.Contains(n, ".") {
					out = append(out, n)
				}
			}
		}
		for _, v := range s.vars {
			out = append(out, v.name)
		}
		s.mu.Unlock()
	}
	if c, err := parseCell(code, 0); err == nil {
		for _, d := range c.decls {
			for _, n := range d.names {
				if !strings.Contains(n, ".") {
					out = append(out, n)
				}
			}
		}
		for _, v := range c.defined {
			out = append(out, v.name)
		}
	}
	return out
}

// members lists what may follow "x.": package members, or the fields and
// methods of the value x holds.
func (s *Session) members(code, x string) []string {
	if !strings.Contains(x, ".") {
		imports := s.importsInScope(code)
		if path, ok := imports[x]; ok {
			return exported(packageTable(path))
		}
	}
	var out []string
	if v, typ, ok := s.valueOf(x); ok {
		out = append(out, fieldsAndMethods(v)...)
		// Methods of a type the notebook declares.
		if base := baseTypeName(typ); base != "" {
			s.mu.Lock()
			for _, d := range s.decls {
				if d.kind == declMethod && strings.HasPrefix(d.names[0], base+".") {
					out = append(out, strings.TrimPrefix(d.names[0], base+"."))
				}
			}
			s.mu.Unlock()
		}
		return out
	}
	if !strings.Contains(x, ".") {
		// A package not imported yet but known by name.
		if path := s.knownPackage(x); path != "" {
			return exported(packageTable(path))
		}
	}
	return nil
}

// knownPackage finds the import path of a package known by its name, when
// exactly one has that name.
func (s *Session) knownPackage(name string) string {
	found := ""
	for _, tables := range []map[string]map[string]reflect.Value{stdlib.Symbols, symbols.Symbols} {
		for k := range tables {
			if strings.HasSuffix(k, "/"+name) {
				p := strings.TrimSuffix(k, "/"+name)
				if found != "" && found != p {
					return ""
				}
				found = p
			}
		}
	}
	return found
}

// exported lists a symbol table's names, without yaegi's wrapper types.
func exported(t map[string]reflect.Value) []string {
	var out []string
	for n := range t {
		if !strings.HasPrefix(n, "_") {
			out = append(out, n)
		}
	}
	return out
}

// valueOf returns the value of the selector chain x held by the session
// (a variable, or a field of one), with its type hint. It never calls
// functions and gives up while a cell runs.
func (s *Session) valueOf(x string) (reflect.Value, string, bool) {
	parts := strings.Split(x, ".")
	if !s.mu.TryLock() {
		return reflect.Value{}, "", false
	}
	defer s.mu.Unlock()
	var hint string
	found := false
	for _, v := range s.vars {
		if v.name == parts[0] {
			found, hint = true, resolveHint(v.typ, s.decls)
		}
	}
	if !found && parts[0] != "ctx" {
		return reflect.Value{}, "", false
	}
	p, ok := s.gen.ptrs[parts[0]]
	if !ok {
		var err error
		p, err = s.gen.safeEval("&" + parts[0])
		if err != nil || p.Kind() != reflect.Pointer {
			return reflect.Value{}, "", false
		}
	}
	v := p.Elem()
	for _, f := range parts[1:] {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return reflect.Value{}, "", false
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, "", false
		}
		v = v.FieldByName(f)
		if !v.IsValid() {
			return reflect.Value{}, "", false
		}
		hint = ""
	}
	return v, hint, true
}

// fieldsAndMethods lists the exported fields and methods of v's type (and
// of what it points to).
func fieldsAndMethods(v reflect.Value) []string {
	var out []string
	t := v.Type()
	if v.Kind() == reflect.Interface && !v.IsNil() {
		t = v.Elem().Type()
	}
	addMethods := func(t reflect.Type) {
		for i := 0; i < t.NumMethod(); i++ {
			out = append(out, t.Method(i).Name)
		}
	}
	addMethods(t)
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		addMethods(reflect.PointerTo(t))
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
		addMethods(t)
	}
	if t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); f.IsExported() {
				out = append(out, f.Name)
			}
		}
	}
	return out
}

// baseTypeName is T for a type hint like T, *T, []T.
func baseTypeName(h string) string {
	h = strings.TrimLeft(h, "*[]")
	if h == "" || strings.ContainsAny(h, ". {}()") {
		return ""
	}
	return h
}

// IsComplete tells the front end whether code is a complete cell
// ("complete"), needs more lines ("incomplete", with the indent for the
// next line), or cannot become valid ("invalid").
func (s *Session) IsComplete(code string) (status, indent string) {
	defer func() {
		if r := recover(); r != nil {
			editorPanic(r)
			status, indent = "unknown", ""
		}
	}()
	if strings.TrimSpace(code) == "" {
		return "complete", ""
	}
	lines := strings.Split(strings.TrimRight(code, "\n"), "\n")
	if t := strings.TrimSpace(lines[0]); strings.HasPrefix(t, "!") || strings.HasPrefix(t, "%") {
		onlyMagic := true
		for _, l := range lines {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "!") && !strings.HasPrefix(t, "%") {
				onlyMagic = false
			}
		}
		if onlyMagic {
			return "complete", ""
		}
	}
	depth := 0
	var sc scanner.Scanner
	fset := token.NewFileSet()
	file := fset.AddFile("", -1, len(code))
	unterminated := false
	sc.Init(file, []byte(code), func(pos token.Position, msg string) {
		if strings.Contains(msg, "not terminated") {
			unterminated = true
		}
	}, 0)
	last := token.ILLEGAL
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			break
		}
		switch tok {
		case token.LPAREN, token.LBRACE, token.LBRACK:
			depth++
		case token.RPAREN, token.RBRACE, token.RBRACK:
			depth--
		}
		if depth < 0 {
			return "invalid", ""
		}
		if !(tok == token.SEMICOLON && lit == "\n") {
			last = tok
		}
	}
	if unterminated {
		return "incomplete", ""
	}
	if depth > 0 {
		return "incomplete", strings.Repeat("    ", depth)
	}
	if last.IsOperator() && last != token.RPAREN && last != token.RBRACE && last != token.RBRACK &&
		last != token.INC && last != token.DEC && last != token.SEMICOLON {
		return "incomplete", "    "
	}
	// Magic lines at the top are not Go.
	i := 0
	for i < len(lines) {
		t := strings.TrimSpace(lines[i])
		if t != "" && !strings.HasPrefix(t, "!") && !strings.HasPrefix(t, "%") {
			break
		}
		i++
	}
	body := strings.Repeat("\n", i) + strings.Join(lines[i:], "\n")
	if _, err := parseCell(body, 0); err != nil {
		if se, ok := err.(*syntaxError); ok && se.eof {
			return "incomplete", ""
		}
		return "invalid", ""
	}
	return "complete", ""
}

var (
	pkgNamesOnce sync.Once
	pkgNames     []string
)

// knownPackageNames lists the names of the packages cells may import, so
// that "fm" completes to "fmt" before the import is written.
func knownPackageNames() []string {
	pkgNamesOnce.Do(func() {
		seen := map[string]bool{}
		for _, tables := range []map[string]map[string]reflect.Value{stdlib.Symbols, symbols.Symbols} {
			for k := range tables {
				n := k[strings.LastIndex(k, "/")+1:]
				if n != "" && n != "." && !seen[n] && !strings.HasPrefix(k, "github.com/traefik") {
					seen[n] = true
					pkgNames = append(pkgNames, n)
				}
			}
		}
	})
	return pkgNames
}

// editorPanic is told of a panic recovered in Complete, Inspect or
// IsComplete (a bug: the editor gets an empty answer); tests make it fail.
var editorPanic = func(interface{}) {}
