// Package layering holds a test that keeps the module's dependency arrows
// pointing one way: kernel -> lib and plots, plots -> lib, and lib knowing
// nothing of Jupyter or figures.
package layering

import (
	"os/exec"
	"strings"
	"testing"
)

func TestLibImportsNeitherKernelNorPlots(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/detlab/detlab/lib/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/detlab/detlab/kernel") || strings.HasPrefix(p, "github.com/detlab/detlab/plots") {
			t.Errorf("a lib package depends on %s: lib must not import kernel or plots", p)
		}
		if strings.Contains(p, "traefik/yaegi") || strings.Contains(p, "zmq4") {
			t.Errorf("a lib package depends on %s: lib must stay usable without the kernel", p)
		}
	}
}
