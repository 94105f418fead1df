package scripts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/pyenv"
)

// buildBench builds detlab-bench into a fresh artefacts folder with an
// empty test list (the parity binaries take minutes to build; gpu-build
// makes them) and returns the folder.
func buildBench(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(bin, "detlab-bench"), "../cmd/detlab-bench")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build detlab-bench: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(bin, "tests.txt"), []byte("# no parity binaries in this test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return bin
}

// runCheck runs gpu-check with args and returns its exit status, output and
// report.
func runCheck(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("./gpu-check", append([]string{"--out", out}, args...)...)
	b, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("gpu-check: %v", err)
	}
	md, err := os.ReadFile(filepath.Join(out, "gpu-check.md"))
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(out, "gpu-check.log")); err != nil {
		t.Errorf("no log: %v", err)
	}
	return code, string(b), string(md)
}

// TestGPUCheckSmoke runs gpu-check's CPU smoke mode end to end: detlab's
// and torchvision's Faster R-CNN at 64x64 on the CPU, the table written to
// gpu-check.md with a time on both sides; then the same with a Python that
// does not exist, which must be reported while the script finishes.
func TestGPUCheckSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds detlab-bench and runs torchvision: skipped with -short")
	}
	py := pyenv.Require(t, "Debian python3-torch and python3-torchvision", "torch", "torchvision")
	bin := buildBench(t)
	for _, c := range []struct {
		name     string
		python   string
		wantCode int
		want     []string
		rows     bool
	}{
		{"torch", py, 0, []string{"- mode: cpu smoke", "## Parity tests", "## Benchmark (cpu smoke)",
			"| workload | ours ms | torch ms | ratio | ours GPU MiB | torch GPU MiB |", "- parity: passed", "exit status 0"}, true},
		{"no python", "/nonexistent/python3", 1, []string{"- mode: cpu smoke", "## Benchmark (cpu smoke)", "exit status 1"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, md := runCheck(t, "--cpu-smoke", "--bin", bin, "--python", c.python, "--budget", "400")
			if code != c.wantCode {
				t.Errorf("exit status %d, want %d\n%s", code, c.wantCode, out)
			}
			for _, w := range c.want {
				if !strings.Contains(md, w) {
					t.Errorf("report lacks %q:\n%s", w, md)
				}
			}
			if !c.rows {
				return
			}
			for _, name := range []string{"frcnn-train-640x480-b2-amp", "frcnn-infer-640x480-b1"} {
				// Both sides timed: "| name | 123.45 | 67.89 | 1.82 |".
				re := regexp.MustCompile(`\| ` + regexp.QuoteMeta(name) + ` \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|`)
				if !re.MatchString(md) {
					t.Errorf("no timed row for %s in the report:\n%s\n\noutput:\n%s", name, md, out)
				}
			}
		})
	}
}

// TestGPUCheckDryRun checks the plan of a dry run: every step named,
// nothing run, a report written, exit status 0 even with nothing built.
func TestGPUCheckDryRun(t *testing.T) {
	code, out, md := runCheck(t, "--dry-run", "--bin", t.TempDir(), "--python", "/bin/true")
	if code != 0 {
		t.Errorf("exit status %d, want 0\n%s", code, out)
	}
	for _, w := range []string{"detlab-bench is missing", "tests.txt missing", "## Benchmark", "exit status 0"} {
		if !strings.Contains(md, w) {
			t.Errorf("report lacks %q:\n%s", w, md)
		}
	}
}

// TestScriptsSyntax checks the scripts parse (bash -n).
func TestScriptsSyntax(t *testing.T) {
	for _, s := range []string{"gpu-check", "gpu-build"} {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", s, err, out)
		}
	}
}
