package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/detlab/detlab/lib/compute"
)

func TestFinalExpression(t *testing.T) {
	s := newSession(t)
	tests := []struct {
		code string
		want string // text/plain; "" for no result
	}{
		{"1+1", "2"},
		{"x := 3", ""},
		{"x * 2", "6"},
		{"import \"fmt\"\nfmt.Println(\"hi\")", ""},
		{"fmt.Sprint(\"a\", 1)", "a1"},
		{"var e error\ne", "<nil>"},
		{"var p *int\np", "<nil>"},
		{"func two() (int, error) { return 2, nil }\ntwo()", "2"},
		{"func pair() (int, int) { return 2, 3 }\npair()", "2 3"},
		{"func nothing() {}\nnothing()", ""},
		{"for i := 0; i < 2; i++ {}", ""},
		{"type S struct{ A int }\nS{4}", "{4}"},
		{"type N struct{}\nfunc (N) String() string { return \"named\" }\nN{}", "named"},
		{"\"a string\"", "a string"},
	}
	for _, tc := range tests {
		got, r := mustRun(t, s, tc.code)
		if got != tc.want {
			t.Errorf("cell %q: result %q, want %q (stdout %q)", tc.code, got, tc.want, r.out())
		}
	}
}

func TestRichResult(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, "type H struct{}\nfunc (H) HTML() string { return \"<b>h</b>\" }")
	r := &recorder{}
	d, err := s.Execute(context.Background(), "H{}", r)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || d.MIME["text/html"] != "<b>h</b>" {
		t.Fatalf("result of a value with an HTML method = %+v, want text/html", d)
	}
	r = &recorder{}
	d, err = s.Execute(context.Background(), "import \"image\"\nimage.NewRGBA(image.Rect(0, 0, 4, 3))", r)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || d.MIME["image/png"] == nil {
		t.Fatalf("result of an image = %+v, want image/png", d)
	}
	// display.Show of a notebook value uses its HTML method.
	r = &recorder{}
	if _, err := s.Execute(context.Background(), "import \"github.com/detlab/detlab/kernel/display\"\ndisplay.Show(H{})", r); err != nil {
		t.Fatal(err)
	}
	if len(r.displays) != 1 || r.displays[0].MIME["text/html"] != "<b>h</b>" {
		t.Fatalf("display.Show(H{}) sent %+v", r.displays)
	}
	// display calls reach the output.
	r = &recorder{}
	if _, err := s.Execute(context.Background(), "import \"github.com/detlab/detlab/kernel/display\"\ndisplay.Markdown(\"**m**\")\nid := display.NewID()\ndisplay.ShowID(id, 1)\ndisplay.Update(id, 2)", r); err != nil {
		t.Fatal(err)
	}
	if len(r.displays) != 2 || len(r.updates) != 1 || r.displays[0].MIME["text/markdown"] != "**m**" {
		t.Fatalf("displays %+v updates %+v", r.displays, r.updates)
	}
}

func TestOutputStreams(t *testing.T) {
	s := newSession(t)
	_, r := mustRun(t, s, "import (\n\t\"fmt\"\n\t\"os\"\n)\nfmt.Println(\"out\")\nfmt.Fprintln(os.Stderr, \"err\")")
	if r.out() != "out\n" {
		t.Errorf("stdout %q, want %q", r.out(), "out\n")
	}
	if !strings.Contains(r.errs(), "err\n") {
		t.Errorf("stderr %q lacks err", r.errs())
	}
}

func TestRedefinition(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, `import "strings"
type Head struct{ Scale int }
func (h Head) Apply(x int) int { return x * h.Scale }
type Kept struct{ N int }
h := Head{Scale: 2}
k := Kept{N: 7}
words := strings.Fields("a b c")
n := 41
func f() int { return 1 }`)
	if got, _ := mustRun(t, s, "h.Apply(10)"); got != "20" {
		t.Fatalf("before redefinition h.Apply(10) = %s", got)
	}
	// A method redefined: the new code is in force, variables stay.
	got, r := mustRun(t, s, "func (h Head) Apply(x int) int { return x + h.Scale }\nh.Apply(10)")
	if got != "12" {
		t.Fatalf("after redefining the method h.Apply(10) = %q, want 12 (stderr %q)", got, r.errs())
	}
	if r.errs() != "" {
		t.Errorf("redefining a method dropped something: %q", r.errs())
	}
	// A type redefined: its variables are dropped, with a message; others kept.
	got, r = mustRun(t, s, "type Head struct{ Scale, Shift int }\nfunc (h Head) Apply(x int) int { return x*h.Scale + h.Shift }\nHead{Scale: 3, Shift: 1}.Apply(10)")
	if got != "31" {
		t.Fatalf("after redefining the type: %q, want 31", got)
	}
	if want := "detlab: dropped variable h: its type Head was redefined"; !strings.Contains(r.errs(), want) {
		t.Errorf("stderr %q lacks %q", r.errs(), want)
	}
	for code, want := range map[string]string{"k.N": "7", "len(words)": "3", "n + 1": "42", "f()": "1"} {
		if got, _ := mustRun(t, s, code); got != want {
			t.Errorf("after the rebuild %s = %q, want %q", code, got, want)
		}
	}
	if _, _, err := run(t, s, "h"); err == nil {
		t.Error("h survived the redefinition of its type")
	}
	// An interface holding a value of a redefined type is dropped too.
	mustRun(t, s, "import \"fmt\"\ntype Named struct{}\nfunc (Named) String() string { return \"old\" }\nvar st fmt.Stringer = Named{}")
	_, r = mustRun(t, s, "type Named struct{ X int }\nfunc (Named) String() string { return \"new\" }")
	if !strings.Contains(r.errs(), "st") {
		t.Errorf("redefining Named: stderr %q does not drop st", r.errs())
	}
	// Variables whose types only their layout tells.
	mustRun(t, s, "type Box struct{ W int }\ntype Other struct{ V int }\nboxes := []Box{{1}, {2}}\nfirst := boxes[0]\nothers := map[string]*Other{\"a\": {5}}\no := others[\"a\"]")
	_, r = mustRun(t, s, "type Other struct{ V, U int }")
	if !strings.Contains(r.errs(), "o, others") && !strings.Contains(r.errs(), "others, o") {
		t.Errorf("redefining Other: stderr %q, want o and others dropped", r.errs())
	}
	if got, _ := mustRun(t, s, "first.W + boxes[1].W"); got != "3" {
		t.Errorf("first.W + boxes[1].W = %q after redefining another type", got)
	}
	// A cell whose declarations failed, then fixed with a changed type.
	if _, _, err := run(t, s, "type Fresh struct{ A int }\nfunc broken() int { return \"s\" }"); err == nil {
		t.Error("a function returning a string as int compiled")
	}
	if got, _ := mustRun(t, s, "type Fresh struct{ A, B int }\nfunc broken() int { return 1 }\nFresh{B: 2}.B"); got != "2" {
		t.Errorf("after fixing a failed cell: %q", got)
	}
	// A function redefined.
	mustRun(t, s, "func f() int { return 2 }")
	if got, _ := mustRun(t, s, "f()"); got != "2" {
		t.Errorf("after redefining f, f() = %q", got)
	}
	// Re-running an unchanged cell changes nothing.
	_, r = mustRun(t, s, "type Kept struct{ N int }")
	if r.errs() != "" {
		t.Errorf("re-declaring an unchanged type: %q", r.errs())
	}
	if got, _ := mustRun(t, s, "k.N"); got != "7" {
		t.Errorf("k.N = %q after re-declaring its unchanged type", got)
	}
}

func TestRedefinitionKeepsLibraryValues(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, `import "github.com/detlab/detlab/lib/tensor"
import "gonum.org/v1/gonum/mat"
model := tensor.New(2, 3)
m := mat.NewDense(2, 2, []float64{1, 2, 3, 4})
type MyHead struct{ W int }
func (h MyHead) Out() int { return h.W }`)
	mustRun(t, s, "model.Set(5, 1, 2)")
	_, r := mustRun(t, s, "type MyHead struct{ W, B int }\nfunc (h MyHead) Out() int { return h.W + h.B }")
	if r.errs() != "" {
		t.Errorf("redefining a head dropped: %q", r.errs())
	}
	if got, _ := mustRun(t, s, "model.At(1, 2)"); got != "5" {
		t.Errorf("model.At(1, 2) = %q after the head was redefined, want 5", got)
	}
	if got, _ := mustRun(t, s, "m.At(1, 1)"); got != "4" {
		t.Errorf("m.At(1,1) = %q", got)
	}
	if got, _ := mustRun(t, s, "MyHead{W: 1, B: 2}.Out()"); got != "3" {
		t.Errorf("new head: %q", got)
	}
}

func TestInterrupt(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, "x := 5")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Execute(ctx, "n := 0\nfor {\n\tn++\n}", &recorder{})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		var ee *ExecError
		if !errors.As(err, &ee) || ee.Name != "Interrupted" {
			t.Fatalf("interrupted cell returned %v, want an Interrupted ExecError", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("interrupt took %v", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the loop did not stop within 2s of the interrupt")
	}
	if got, _ := mustRun(t, s, "x + 1"); got != "6" {
		t.Errorf("after the interrupt x + 1 = %q", got)
	}
	// ctx is cancelled by the interrupt inside the cell.
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := s.Execute(ctx, "<-ctx.Done()\nprintln(\"unreachable?\")", &recorder{})
	if err == nil {
		t.Error("a cell waiting on ctx.Done finished without error after the interrupt")
	}
}

func TestPanics(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, "x := 1\nfunc boom(i int) int {\n\tvar a []int\n\treturn a[i]\n}")
	tests := []struct {
		code, value string
		line        string // a traceback line that must appear
	}{
		{"\n\npanic(\"bang\")", "bang", "cell line 3"},
		{"import \"errors\"\n\nvar e error = errors.New(\"x\")\n_ = e.Error()\nvar m map[string]int\nm[\"a\"] = 1", "nil map", "cell line 6"},
		{"y := 2\nboom(y)", "index out of range", "in boom"},
		{"import \"strings\"\nstrings.Repeat(\"x\", -1)", "negative Repeat count", "strings.Repeat"},
	}
	for _, tc := range tests {
		_, _, err := run(t, s, tc.code)
		var ee *ExecError
		if !errors.As(err, &ee) || ee.Name != "panic" {
			t.Errorf("cell %q: error %v, want a panic", tc.code, err)
			continue
		}
		if !strings.Contains(ee.Value, tc.value) {
			t.Errorf("cell %q: panic value %q lacks %q", tc.code, ee.Value, tc.value)
		}
		if tb := strings.Join(ee.Traceback, "\n"); !strings.Contains(tb, tc.line) {
			t.Errorf("cell %q: traceback lacks %q:\n%s", tc.code, tc.line, tb)
		}
	}
	if got, _ := mustRun(t, s, "x"); got != "1" {
		t.Errorf("state lost after panics: x = %q", got)
	}
}

func TestGoroutinePanic(t *testing.T) {
	s := newSession(t)
	r := &recorder{}
	_, err := s.Execute(context.Background(), "import \"time\"\ngo func() {\n\tpanic(\"in a goroutine\")\n}()\ntime.Sleep(200 * time.Millisecond)", r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.errs(), "panic in a goroutine started by a cell: in a goroutine") {
		t.Errorf("stderr %q lacks the goroutine's panic", r.errs())
	}
	// Arguments are evaluated when the go statement runs.
	_, r = mustRun(t, s, "import \"fmt\"\nimport \"sync\"\nvar wg sync.WaitGroup\nfor i := 0; i < 3; i++ {\n\twg.Add(1)\n\tgo func(k int) { defer wg.Done(); fmt.Print(k) }(i)\n}\nwg.Wait()")
	if out := r.out(); len(out) != 3 || !strings.Contains(out, "0") || !strings.Contains(out, "2") {
		t.Errorf("goroutines printed %q, want 0, 1, 2 in some order", out)
	}
	if got, _ := mustRun(t, s, "1+2"); got != "3" {
		t.Errorf("session broken after a goroutine panic: %q", got)
	}
}

func TestErrors(t *testing.T) {
	s := newSession(t)
	tests := []struct{ code, name, value, line string }{
		{"x := ", "SyntaxError", "expected operand", "cell line 1"},
		{"a := 1\nb := undefinedThing + a", "CompileError", "", "cell line 2"},
		{"func g() int {\n\treturn \"s\"\n}", "CompileError", "", "cell line 2"},
		{"import \"no/such/pkg\"", "ImportError", "not available", ""},
		{"%nosuch", "MagicError", "unknown magic", ""},
	}
	for _, tc := range tests {
		_, _, err := run(t, s, tc.code)
		var ee *ExecError
		if !errors.As(err, &ee) {
			t.Errorf("cell %q: error %v, want an ExecError", tc.code, err)
			continue
		}
		if ee.Name != tc.name || !strings.Contains(ee.Value, tc.value) {
			t.Errorf("cell %q: %s: %s, want %s containing %q", tc.code, ee.Name, ee.Value, tc.name, tc.value)
		}
		if tb := strings.Join(ee.Traceback, "\n"); !strings.Contains(tb, tc.line) {
			t.Errorf("cell %q: traceback lacks %q:\n%s", tc.code, tc.line, tb)
		}
	}
}

func TestMagics(t *testing.T) {
	s := newSession(t)
	_, r := mustRun(t, s, "!echo shell-says-hi")
	if r.out() != "shell-says-hi\n" {
		t.Errorf("!echo: %q", r.out())
	}
	_, r = mustRun(t, s, "%help")
	if !strings.Contains(r.out(), "%reset") {
		t.Errorf("%%help: %q", r.out())
	}
	mustRun(t, s, "%env DETLAB_TEST_VAR=abc")
	_, r = mustRun(t, s, "%env DETLAB_TEST_VAR")
	if r.out() != "abc\n" {
		t.Errorf("%%env NAME: %q", r.out())
	}
	if got, _ := mustRun(t, s, "import \"os\"\nos.Getenv(\"DETLAB_TEST_VAR\")"); got != "abc" {
		t.Errorf("a cell sees %q for the variable %%env set", got)
	}
	got, r := mustRun(t, s, "%time\nx := 2\nx * 21")
	if got != "42" || !strings.HasPrefix(r.out(), "time: ") {
		t.Errorf("%%time: result %q, stdout %q", got, r.out())
	}
	mustRun(t, s, "%reset")
	if _, _, err := run(t, s, "x"); err == nil {
		t.Error("x survived %reset")
	}
	// Line numbers count the magic lines.
	_, _, err := run(t, s, "%time\n\nundefinedName")
	var ee *ExecError
	if !errors.As(err, &ee) || !strings.Contains(strings.Join(ee.Traceback, "\n"), "cell line 3") {
		t.Errorf("error after a magic: %v", err)
	}
}

func TestInput(t *testing.T) {
	s := newSession(t)
	r := &recorder{inputs: []string{"Ada", "7"}}
	d, err := s.Execute(context.Background(), "import \"fmt\"\nimport \"bufio\"\nimport \"os\"\nvar name string\nfmt.Scanln(&name)\nsc := bufio.NewScanner(os.Stdin)\nsc.Scan()\nname + sc.Text()", r)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || d.MIME["text/plain"] != "Ada7" {
		t.Fatalf("result %+v, want Ada7", d)
	}
	if len(r.prompts) != 2 {
		t.Errorf("asked %d times, want 2", len(r.prompts))
	}
}

func TestComplete(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, "import \"strings\"\ntype P struct{ Name string; Age int }\nfunc (p P) Hello() string { return p.Name }\np := &P{Name: \"a\"}\nvar count = 3")
	tests := []struct {
		code       string
		want       []string // must be among the matches
		start, end int
	}{
		{"strings.Spl", []string{"Split", "SplitN"}, 8, 11},
		{"p.", []string{"Age", "Hello", "Name"}, 2, 2},
		{"p.Na", []string{"Name"}, 2, 4},
		{"fm", []string{"fmt"}, 0, 2},
		{"cou", []string{"count"}, 0, 3},
		{"x := le", []string{"len"}, 5, 7},
		{"é := stri", []string{"strings"}, 5, 9}, // cursor in code points
	}
	for _, tc := range tests {
		m, start, end := s.Complete(tc.code, len([]rune(tc.code)))
		for _, w := range tc.want {
			if !contains(m, w) {
				t.Errorf("Complete(%q) = %v, lacks %s", tc.code, m, w)
			}
		}
		if start != tc.start || end != tc.end {
			t.Errorf("Complete(%q) range %d:%d, want %d:%d", tc.code, start, end, tc.start, tc.end)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestInspect(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, "import \"strings\"\n// Greet says hello.\nfunc Greet(n string) string { return \"hi \" + n }\ntype P struct{ Name string }\nfunc (p P) Hello() string { return p.Name }\np := P{Name: \"a\"}\nvar count = 3")
	mustRun(t, s, "// Twice doubles.\nfunc Twice(x int) int { return 2 * x }")
	tests := []struct{ code, want string }{
		{"strings.Split", "Split slices s into all substrings"},
		{"strings.Split(", "func Split(s, sep string) []string"},
		{"Greet", "func Greet(n string) string\n\nGreet says hello."},
		{"Twice", "func Twice(x int) int\n\nTwice doubles."},
		{"p.Hello", "func (p P) Hello() string"},
		{"count", "var count int = 3"},
		{"append", "The append built-in function"},
		{"P", "type P struct"},
		{"import \"gonum.org/v1/plot\"\nplot.New", "New returns a new plot with some reasonable default settings."},
		{"import \"github.com/detlab/detlab/lib/tensor\"\ntensor.New", "func New(shape ...int) *Tensor"},
	}
	for _, tc := range tests {
		got, ok := s.Inspect(tc.code, len([]rune(tc.code)), 0)
		if !ok || !strings.Contains(got, tc.want) {
			t.Errorf("Inspect(%q) = %v %q, want %q", tc.code, ok, got, tc.want)
		}
	}
	if _, ok := s.Inspect("nosuchname", 3, 0); ok {
		t.Error("Inspect found an unknown name")
	}
}

func TestIsComplete(t *testing.T) {
	s := newSession(t)
	tests := []struct{ code, status, indent string }{
		{"x := 1", "complete", ""},
		{"func f() {", "incomplete", "    "},
		{"x := []int{\n1,", "incomplete", "    "},
		{"}", "invalid", ""},
		{"x := 1 +", "incomplete", "    "},
		{"!ls", "complete", ""},
		{"s := `abc", "incomplete", ""},
		{"for {\n}", "complete", ""},
		{"x := ", "incomplete", "    "},
		{"x := 1 1", "invalid", ""},
		{"", "complete", ""},
	}
	for _, tc := range tests {
		st, ind := s.IsComplete(tc.code)
		if st != tc.status || ind != tc.indent {
			t.Errorf("IsComplete(%q) = %s %q, want %s %q", tc.code, st, ind, tc.status, tc.indent)
		}
	}
}

// TestInterruptCompiledCode interrupts a cell stuck in compiled code that
// does not watch ctx: the session moves to a fresh generation and keeps
// the variables.
func TestInterruptCompiledCode(t *testing.T) {
	s := newSession(t)
	mustRun(t, s, "import \"time\"\nkept := []int{1, 2, 3}")
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{}
	done := make(chan error, 1)
	go func() {
		_, err := s.Execute(ctx, "time.Sleep(3 * time.Second)", r)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		var ee *ExecError
		if !errors.As(err, &ee) || ee.Name != "Interrupted" {
			t.Fatalf("got %v, want Interrupted", err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("the interrupt took %v", d)
		}
	case <-time.After(2500 * time.Millisecond):
		t.Fatal("Execute did not return after the interrupt")
	}
	if !strings.Contains(r.errs(), "continues in a fresh interpreter") {
		t.Errorf("stderr %q does not say the session moved on", r.errs())
	}
	if got, _ := mustRun(t, s, "len(kept)"); got != "3" {
		t.Errorf("len(kept) = %q after abandoning the generation", got)
	}
}

// TestInterruptPrinting stops a cell printing without newline forever.
func TestInterruptPrinting(t *testing.T) {
	s := newSession(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r := &recorder{}
	start := time.Now()
	_, err := s.Execute(ctx, "import \"fmt\"\nfor {\n\tfmt.Print(\"x\")\n}", r)
	var ee *ExecError
	if !errors.As(err, &ee) || ee.Name != "Interrupted" {
		t.Fatalf("got %v, want Interrupted", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if len(r.out()) == 0 || strings.Trim(r.out(), "x") != "" {
		t.Errorf("printed %d bytes, not only x", len(r.out()))
	}
	if got, _ := mustRun(t, s, "2*3"); got != "6" {
		t.Errorf("after the interrupt: %q", got)
	}
}

func TestStopperFindsFields(t *testing.T) {
	s := newSession(t)
	if s.gen.stop == nil {
		t.Fatal("the yaegi Interpreter fields used to stop code were not found: check stop.go against the yaegi version")
	}
}

func TestBannerNamesComputeBackend(t *testing.T) {
	s := newSession(t)
	b := s.Banner()
	if !strings.Contains(b, "Compute: CPU, "+compute.Backend()) {
		t.Errorf("banner %q does not name the compute backend %q", b, compute.Backend())
	}
}
