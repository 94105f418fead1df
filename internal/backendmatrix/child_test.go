package backendmatrix

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunSuite builds a throwaway module's test binary and checks that
// runSuite records passes and skips, and that a failing test yields an
// error naming the backend and carrying the test's output.
func TestRunSuite(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.21\n",
		"m_test.go": `package m

import (
	"os"
	"testing"
)

func TestPass(t *testing.T) { t.Log("blas=" + os.Getenv("DETLAB_BLAS")) }
func TestSkip(t *testing.T) { t.Skip("no golden") }
func TestFail(t *testing.T) { t.Fatal("parity broken: max diff 0.5") }
`,
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := &suite{dir: dir, imp: "example.com/m", run: "^(TestPass|TestSkip)$"}
	if err := buildSuites(context.Background(), goBin, dir, t.TempDir(), []*suite{s}); err != nil {
		t.Fatal(err)
	}
	run, err := runSuite(context.Background(), goBin, s, "onednn")
	if err != nil {
		t.Fatalf("passing run: %v", err)
	}
	if got := run.result["TestPass"]; got != "pass" {
		t.Errorf("TestPass: %q, want pass", got)
	}
	if got := run.result["TestSkip"]; got != "skip" {
		t.Errorf("TestSkip: %q, want skip", got)
	}
	if got := run.result["TestFail"]; got != "" {
		t.Errorf("TestFail ran (%q) though -test.run excluded it", got)
	}
	if !strings.Contains(run.output, "blas=onednn") {
		t.Errorf("the child did not see DETLAB_BLAS=onednn:\n%s", run.output)
	}
	s.run = ""
	_, err = runSuite(context.Background(), goBin, s, "onednn")
	if err == nil {
		t.Fatal("a failing child run returned no error")
	}
	for _, want := range []string{"DETLAB_BLAS=onednn", "example.com/m", "parity broken: max diff 0.5"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}
