package session

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCell(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		imports  []string
		decls    []string // names
		defined  []string
		hasStmts bool
		final    string
	}{
		{"empty", "", nil, nil, nil, false, ""},
		{"expression", "1+1", nil, nil, nil, true, "1+1"},
		{"import group", "import (\n\t\"fmt\"\n\tm \"math\"\n)", []string{"fmt", "m=math"}, nil, nil, false, ""},
		{"mixed in any order",
			"x := 1\nimport \"fmt\"\nfunc f() int { return 2 }\ntype T struct{}\nfmt.Println(x)\nfunc (T) M() {}\nconst c = 3\nvar v, w = 1, 2\nf()",
			[]string{"fmt"}, []string{"f", "T", "T.M", "c", "v,w"}, []string{"x"}, true, "f()"},
		{"func literal statement", "func() { println(1) }()", nil, nil, nil, true, "func() { println(1) }()"},
		{"method with pointer receiver", "func (t *T) Set(v int) { t.v = v }", nil, []string{"T.Set"}, nil, false, ""},
		{"multi define", "a, b := 1, 2\na+b", nil, nil, []string{"a", "b"}, true, "a+b"},
		{"no final expression", "x := 3", nil, nil, []string{"x"}, true, ""},
		{"for loop", "for i := 0; i < 3; i++ {\n\tprintln(i)\n}", nil, nil, nil, true, ""},
		{"grouped types", "type (\n\tA int\n\tB string\n)", nil, []string{"A", "B"}, nil, false, ""},
		{"semicolons", "x := 1; y := 2; x+y", nil, nil, []string{"x", "y"}, true, "x+y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseCell(tc.src, 1)
			if err != nil {
				t.Fatalf("parseCell(%q): %v", tc.src, err)
			}
			var imports []string
			for _, im := range c.imports {
				if im.Name != "" {
					imports = append(imports, im.Name+"="+im.Path)
				} else {
					imports = append(imports, im.Path)
				}
			}
			var decls []string
			for _, d := range c.decls {
				decls = append(decls, strings.Join(d.names, ","))
			}
			var defined []string
			for _, v := range c.defined {
				defined = append(defined, v.name)
			}
			if !reflect.DeepEqual(imports, tc.imports) || !reflect.DeepEqual(decls, tc.decls) || !reflect.DeepEqual(defined, tc.defined) {
				t.Errorf("parseCell(%q): imports %v decls %v defined %v; want %v %v %v", tc.src, imports, decls, defined, tc.imports, tc.decls, tc.defined)
			}
			if (c.stmtSrc != "") != tc.hasStmts {
				t.Errorf("parseCell(%q): statements %q, want some: %v", tc.src, c.stmtSrc, tc.hasStmts)
			}
			final := ""
			if c.finalStart >= 0 {
				final = c.src[c.finalStart:c.finalEnd]
			}
			if final != tc.final {
				t.Errorf("parseCell(%q): final expression %q, want %q", tc.src, final, tc.final)
			}
			// Masking keeps every line where it was.
			for _, part := range []string{c.declSrc, c.stmtSrc} {
				if n, m := strings.Count(part, "\n"), strings.Count(c.src, "\n"); n > m {
					t.Errorf("masked part has %d lines, cell %d", n, m)
				}
			}
		})
	}
}

func TestParseCellErrors(t *testing.T) {
	tests := []struct {
		src  string
		line int
	}{
		{"x := ", 1},
		{"func f() {\n\treturn 1 +\n}", 3},
		{"import \"fmt\"\nx := )", 2},
		{"type T struct {", 1},
	}
	for _, tc := range tests {
		_, err := parseCell(tc.src, 1)
		se, ok := err.(*syntaxError)
		if !ok {
			t.Errorf("parseCell(%q) error %v, want a syntax error", tc.src, err)
			continue
		}
		if se.line != tc.line {
			t.Errorf("parseCell(%q) error at line %d, want %d (%v)", tc.src, se.line, tc.line, se)
		}
	}
}

func TestRewriteGo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"go f(x, 1)", "__detlab.Go(f, x, 1)"},
		{"go func() {\n\tpanic(1)\n}()", "__detlab.Go(func() {\n\tpanic(1)\n})"},
		{"go f(xs...)", "__detlab.Go(func() { f(xs...) })"},
		{"func g() { go h() }", "func g() { __detlab.Go(h) }"},
		{"x := \"go f()\"", "x := \"go f()\""},
	}
	for _, tc := range tests {
		if got := rewriteGo(tc.in); got != tc.want {
			t.Errorf("rewriteGo(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHints(t *testing.T) {
	c, err := parseCell("a := T{1}\nb := &T{}\nc := []int{1}\nd := f()\ne := new(T)\ng := func(x int) int { return x }\nh := 3", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "T", "b": "*T", "c": "[]int", "d": "call:f:0", "e": "*T", "g": "func(x int) int", "h": ""}
	for _, v := range c.defined {
		if v.typ != want[v.name] {
			t.Errorf("hint of %s = %q, want %q", v.name, v.typ, want[v.name])
		}
	}
	decls := []*decl{{kind: declFunc, names: []string{"f"}, src: "func f() (*T, error) { return nil, nil }"}}
	if got := resolveHint("call:f:0", decls); got != "*T" {
		t.Errorf("resolveHint = %q, want *T", got)
	}
	if got := resolveHint("call:f:1", decls); got != "error" {
		t.Errorf("resolveHint = %q, want error", got)
	}
}

// FuzzSplit checks that splitting never panics and that whatever parses
// keeps the cell's lines.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"1+1", "import \"fmt\"\nfmt.Println(1)", "type T struct{}\nfunc (T) M() {}\nx := T{}\nx.M()",
		"go func() { panic(1) }()", "func() {}()", "for {}", "var (\n a = 1\n b = 2\n)\na+b",
		"x := `raw\nstring`", "/* comment */ x := 1 // end", "func (", "}", "))", "go f(xs...)",
		"const (\n\tA = iota\n\tB\n)", "%time\n1+1", "\xff", "type T[K comparable] struct{}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := parseCell(src, 1)
		if err != nil {
			return
		}
		for _, part := range []string{c.declSrc, c.stmtSrc} {
			if strings.Count(part, "\n") > strings.Count(c.src, "\n") {
				t.Fatalf("masked part %q has more lines than the cell %q", part, c.src)
			}
		}
		if c.finalStart >= 0 && (c.finalStart > c.finalEnd || c.finalEnd > len(c.src)) {
			t.Fatalf("final expression range %d:%d outside the cell", c.finalStart, c.finalEnd)
		}
	})
}

// FuzzEditor checks that completion, inspection and is_complete never
// panic, whatever the code and cursor.
func FuzzEditor(f *testing.F) {
	for _, s := range []string{"fmt.Pri", "x.", "é := stri", "func f() {", "`", "a.b.c.", "strings.Split("} {
		f.Add(s, len(s))
	}
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, code string, cursor int) {
		editorPanic = func(r interface{}) { t.Fatalf("panic on %q at %d: %v", code, cursor, r) }
		defer func() { editorPanic = func(interface{}) {} }()
		s.Complete(code, cursor)
		s.Inspect(code, cursor, 0)
		s.IsComplete(code)
	})
}
