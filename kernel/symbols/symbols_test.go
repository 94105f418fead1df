package symbols

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTablesUpToDate regenerates the tables into a temporary directory and
// fails when they differ from the committed ones: an exported name of a
// package cells import would otherwise be out of their reach.
func TestTablesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerating the symbol tables runs go list -export over every package")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "./gen", "-out", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, stderr.String())
	}
	fresh, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, f := range fresh {
		name := filepath.Base(f)
		want[name] = true
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s is missing: run go generate ./kernel/symbols", name)
			continue
		}
		w, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("%s is out of date: run go generate ./kernel/symbols", name)
		}
	}
	committed, err := filepath.Glob("x_*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range committed {
		if !want[f] {
			t.Errorf("%s belongs to a package that is gone or does not build: run go generate ./kernel/symbols", f)
		}
	}
	if t.Failed() {
		t.Logf("generator log:\n%s", strings.TrimSpace(stderr.String()))
	}
}

func TestTablesLoad(t *testing.T) {
	for _, p := range []string{
		"gorgonia.org/gorgonia/gorgonia",
		"gorgonia.org/tensor/tensor",
		"gonum.org/v1/plot/plot",
		"gonum.org/v1/plot/plotter/plotter",
		"github.com/detlab/detlab/kernel/display/display",
		"github.com/detlab/detlab/lib/tensor/tensor",
	} {
		if len(Symbols[p]) == 0 {
			t.Errorf("no symbols for %s", p)
		}
	}
	if _, ok := Symbols["github.com/detlab/detlab/kernel/display/display"]["_HTMLer"]; !ok {
		t.Error("display has no interface wrapper for HTMLer")
	}
}
