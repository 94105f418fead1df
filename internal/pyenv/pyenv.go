// Package pyenv finds, for tests that check detlab against Python tools
// (Jupyter, nbconvert, protobuf), an interpreter that imports what they need.
package pyenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Candidates returns the interpreters tried, in order: $DETLAB_PYTHON alone
// when it is set; otherwise python3 on PATH, then /usr/bin/python3 (Debian's
// packages live there even when pyenv or a venv shadows python3).
func Candidates() []string {
	if p := os.Getenv("DETLAB_PYTHON"); p != "" {
		return []string{p}
	}
	return []string{"python3", "/usr/bin/python3"}
}

// Find returns the first candidate that imports every module in mods, or ""
// when none does.
func Find(mods ...string) string {
	imports := "import " + strings.Join(mods, ", ")
	for _, c := range Candidates() {
		if err := exec.Command(c, "-c", imports).Run(); err == nil {
			return c
		}
	}
	return ""
}

// Require returns Find(mods...) or skips the test, naming the modules, the
// interpreters tried and hint (what to install).
func Require(t testing.TB, hint string, mods ...string) string {
	t.Helper()
	py := Find(mods...)
	if py == "" {
		t.Skipf("%s not importable by python3 (%s): %s", strings.Join(mods, ", "), strings.Join(Candidates(), ", "), hint)
	}
	return py
}
