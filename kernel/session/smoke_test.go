package session

import "testing"

func TestSmoke(t *testing.T) {
	s := newSession(t)
	for _, c := range []string{
		"1+1",
		"import \"fmt\"\nx := 3\nfmt.Println(\"hi\", x)\nfunc f() int { return x*2 }\nf()",
		"x",
		"type T struct{A int}\nfunc (t T) M() int { return 1 }\nt := T{2}\nt.M()",
		"func (t T) M() int { return 2 }\nt.M()",
		"t",
		"fmt.Sprint(ctx)",
	} {
		text, r, err := run(t, s, c)
		t.Logf("%q -> %q err=%v out=%q errs=%q", c, text, err, r.out(), r.errs())
	}
}

func TestSmokeTools(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, "import \"strings\"\ntype P struct{ Name string; Age int }\nfunc (p P) Hello() string { return p.Name }\np := &P{Name: \"a\"}\nvar n = 3")
	for _, c := range []struct {
		code string
	}{{"strings.Spl"}, {"p."}, {"fm"}, {"n"}, {"fmt.Print"}} {
		m, a, b := s.Complete(c.code, len(c.code))
		t.Logf("complete %q -> %v %d %d", c.code, m, a, b)
	}
	for _, c := range []string{"strings.Split", "p.Hello", "p.Name", "n", "append", "P", "fmt.Println"} {
		txt, ok := s.Inspect(c, len(c), 0)
		t.Logf("inspect %q -> %v %q", c, ok, txt)
	}
	for _, c := range []string{"x := 1", "func f() {", "x := [", "}", "x := 1 +", "!ls", "s := `abc", "for {\n}"} {
		st, ind := s.IsComplete(c)
		t.Logf("is_complete %q -> %s %q", c, st, ind)
	}
}
