package session

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestMultiDefinedGlobals: variables that one expression of a cell defines
// together (a, b := f()) read right from functions of later cells however
// they are called. yaegi v0.16.1 alone reads another variable's slot when
// such a function is called from another function.
func TestMultiDefinedGlobals(t *testing.T) {
	const mk = "func mk() ([]int, error) { return []int{1, 2, 3}, nil }\n"
	// via calls f from a function and a closure.
	const via = "func via1(i int) int { k := i; return f(k) }\n" +
		"func via(i int) int { g := func(j int) int { return via1(j) }; return g(i) }\n" +
		"via(1)"
	tests := []struct {
		name  string
		cells []string
		want  string
	}{
		{"brief's example, direct call", []string{mk + "preds, _ := mk()", "func f(i int) int { return preds[i] }\nf(1)"}, "2"},
		{"slice from a call", []string{mk + "preds, _ := mk()", "func f(i int) int { return preds[i] }\n" + via}, "2"},
		{"slice, error named", []string{mk + "n := 7\npreds, err := mk()\nif err != nil { panic(err) }", "func f(i int) int { return preds[i] + n - 7 }\n" + via}, "2"},
		{"var declaration", []string{mk + "var preds, _ = mk()", "func f(i int) int { return preds[i] }\n" + via}, "2"},
		{"map comma ok", []string{"m := map[int]int{1: 20}\nfunc look(k int) (int, bool) { v, ok := m[k]; return v, ok }\nv, ok := look(1)\n_ = ok", "func f(i int) int { return v / 10 * i / i }\n" + via}, "2"},
		{"map value", []string{"func mkm() (map[int]int, error) { return map[int]int{1: 2}, nil }\nmm, _ := mkm()", "func f(i int) int { return mm[i] }\n" + via}, "2"},
		{"struct field", []string{"type P struct{ A, B int }\nfunc mkp() (P, error) { return P{A: 2}, nil }\np, _ := mkp()", "func f(i int) int { return p.A * i }\n" + via}, "2"},
		{"pointer method", []string{"type C struct{ n int }\nfunc (c *C) Get(i int) int { return c.n * i }\nfunc mkc() (*C, error) { return &C{n: 2}, nil }\nc, _ := mkc()", "func f(i int) int { return c.Get(i) }\n" + via}, "2"},
		{"same cell, source order", []string{mk, "preds, _ := mk()\nfunc f(i int) int { return preds[i] }\n" + via}, "2"},
		{"redefined later", []string{mk + "preds, _ := mk()", "func mk2() ([]int, error) { return []int{5, 6, 7}, nil }\npreds, _ := mk2()", "func f(i int) int { return preds[i] }\n" + via}, "6"},
		{"redefined by a single value", []string{mk + "preds, _ := mk()", "preds := []int{0, 4}", "func f(i int) int { return preds[i] }\n" + via}, "4"},
		{"assigned after the function", []string{mk + "preds, _ := mk()", "func f(i int) int { return preds[i] }", "preds[1] = 9\n" + via}, "9"},
		{"across a new generation", []string{mk + "preds, _ := mk()", "type T struct{}", "type T struct{ A int }\nfunc f(i int) int { return preds[i] }\n" + via}, "2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t)
			var got string
			for _, c := range tc.cells {
				got, _ = mustRun(t, s, c)
			}
			if got != tc.want {
				t.Errorf("result %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLoopBodyDefinitions: a top-level loop whose body defines two
// variables from one call runs (yaegi alone says "undefined: s").
func TestLoopBodyDefinitions(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, "import \"fmt\"\nfunc g(i int) (string, error) { return fmt.Sprint(\"s\", i), nil }")
	tests := []struct {
		code, out, result string
	}{
		{"for i := 0; i < 3; i++ { s, err := g(i); _ = err; fmt.Println(s) }", "s0\ns1\ns2\n", ""},
		{"if s, err := g(4); err == nil {\n\tfmt.Println(s)\n}", "s4\n", ""},
		{"total := 0\nfor i := 0; i < 2; i++ { s, _ := g(i); total += len(s) }\ntotal", "", "4"},
		{"m := map[int]string{1: \"one\"}\nif v, ok := m[1]; ok {\n\tfmt.Println(v)\n}", "one\n", ""},
		{"var x interface{} = 3\nswitch n, ok := x.(int); {\ncase ok:\n\tfmt.Println(n)\n}", "3\n", ""},
		{"for i := 0; i < 2; i++ {\n\ts, err := g(i)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tfmt.Print(s)\n}\nlen(\"abc\")", "s0s1", "3"},
	}
	for _, tc := range tests {
		text, r, err := run(t, s, tc.code)
		if err != nil {
			t.Errorf("cell %q: %v (stderr %q)", tc.code, err, r.errs())
			continue
		}
		if r.out() != tc.out || text != tc.result {
			t.Errorf("cell %q: stdout %q result %q, want %q and %q", tc.code, r.out(), text, tc.out, tc.result)
		}
	}
	// A panic inside a wrapped statement names the statement's line, as
	// for any top-level loop (yaegi tells no finer position there).
	_, _, err := run(t, s, "n := 1\nfor i := 0; i < 2; i++ {\n\ts, _ := g(i)\n\t_ = s[n+i*5]\n}")
	ee, ok := err.(*ExecError)
	if !ok || ee.Name != "panic" || !strings.Contains(ee.Value, "index out of range") {
		t.Fatalf("panic in a loop: %v", err)
	}
	if tb := strings.Join(ee.Traceback, "\n"); !strings.Contains(tb, "cell line 2") {
		t.Errorf("panic traceback does not name cell line 2:\n%s", tb)
	}
}

// TestFinalValueAndError: a final expression returning (value, error)
// shows the value as a rich result when the error is nil and fails the
// cell with the error otherwise.
func TestFinalValueAndError(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, "import (\n\t\"errors\"\n\t\"image\"\n)\n"+
		"func mkH(fail bool) (*image.RGBA, error) { if fail { return nil, errors.New(\"no h today\") }; return image.NewRGBA(image.Rect(0, 0, 4, 3)), nil }")
	r := &recorder{}
	d, err := s.Execute(context.Background(), "mkH(false)", r)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || d.MIME["image/png"] == nil {
		t.Fatalf("(value, nil) result = %+v, want the image's image/png", d)
	}
	text, _, err := run(t, s, "x := 1\n\nmkH(x == 1)")
	var ee *ExecError
	if !errors.As(err, &ee) || ee.Name != "error" || ee.Value != "no h today" {
		t.Fatalf("(nil, error) result %q, error %v; want the error", text, err)
	}
	if tb := strings.Join(ee.Traceback, "\n"); !strings.Contains(tb, "cell line 3") || !strings.Contains(tb, "mkH(x == 1)") {
		t.Errorf("traceback does not point at the final expression:\n%s", tb)
	}
	// A library call in the idiom: strconv.Atoi.
	tests := []struct{ code, want, err string }{
		{"import \"strconv\"\nstrconv.Atoi(\"42\")", "42", ""},
		{"import \"strconv\"\nstrconv.Atoi(\"x\")", "", `strconv.Atoi: parsing "x": invalid syntax`},
		{"import \"fmt\"\nfmt.Sscan(\"7\", new(int))", "1", ""},
	}
	for _, tc := range tests {
		text, _, err := run(t, s, tc.code)
		got := ""
		if err != nil {
			if !errors.As(err, &ee) {
				t.Fatalf("cell %q: %v", tc.code, err)
			}
			got = ee.Value
		}
		if text != tc.want || got != tc.err {
			t.Errorf("cell %q: result %q error %q, want %q and %q", tc.code, text, got, tc.want, tc.err)
		}
	}
}
