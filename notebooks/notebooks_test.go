package notebooks

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/detlab/detlab/internal/pyenv"
	"github.com/detlab/detlab/kernel/nbrun"
	"github.com/detlab/detlab/kernel/session"
)

// shrink holds, per notebook, the parameters that make the test run quick;
// figures is added by the test.
var shrink = map[string][]nbrun.Param{
	"quickstart.ipynb":       {{Name: "trainImages", Value: "8"}, {Name: "evalImages", Value: "4"}, {Name: "epochs", Value: "1"}},
	"quickstart_gpu.ipynb":   {{Name: "trainImages", Value: "8"}, {Name: "evalImages", Value: "4"}, {Name: "epochs", Value: "1"}, {Name: "imageSize", Value: "96"}},
	"head_tweaking.ipynb":    {{Name: "trainImages", Value: "6"}, {Name: "epochs", Value: "1"}},
	"anchors.ipynb":          {{Name: "trainImages", Value: "6"}, {Name: "epochs", Value: "1"}},
	"amp_accumulation.ipynb": {{Name: "trainImages", Value: "8"}, {Name: "epochs", Value: "1"}},
}

// wantFigures are files each notebook must save into its figures directory.
var wantFigures = map[string][]string{
	"quickstart.ipynb":     {"quickstart_losses.png"},
	"quickstart_gpu.ipynb": {"quickstart_gpu_losses.png"},
}

func notebookFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no notebooks in notebooks/")
	}
	return files
}

// TestNotebooksFormat checks what the committed files must be: nbformat 4.5
// with unique cell ids, the detlab kernelspec, one parameters cell, and no
// outputs.
func TestNotebooksFormat(t *testing.T) {
	for _, f := range notebookFiles(t) {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var nb struct {
				Cells []struct {
					CellType       string           `json:"cell_type"`
					ID             string           `json:"id"`
					Metadata       map[string]any   `json:"metadata"`
					ExecutionCount *int             `json:"execution_count"`
					Outputs        []map[string]any `json:"outputs"`
				} `json:"cells"`
				Metadata struct {
					Kernelspec map[string]string `json:"kernelspec"`
				} `json:"metadata"`
				NBFormat      int `json:"nbformat"`
				NBFormatMinor int `json:"nbformat_minor"`
			}
			if err := json.Unmarshal(b, &nb); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if nb.NBFormat != 4 || nb.NBFormatMinor < 5 {
				t.Errorf("nbformat %d.%d, want 4.5 (cell ids)", nb.NBFormat, nb.NBFormatMinor)
			}
			ks := nb.Metadata.Kernelspec
			if ks["name"] != "detlab" || ks["display_name"] != "Go (detlab)" || ks["language"] != "go" {
				t.Errorf("kernelspec %v, want name detlab, display name Go (detlab), language go", ks)
			}
			if _, ok := shrink[f]; !ok {
				t.Errorf("no test parameters for %s in shrink", f)
			}
			ids := map[string]bool{}
			params := 0
			for i, c := range nb.Cells {
				if c.ID == "" || ids[c.ID] {
					t.Errorf("cell %d: id %q missing or repeated", i, c.ID)
				}
				ids[c.ID] = true
				if c.CellType != "code" {
					continue
				}
				if len(c.Outputs) != 0 || c.ExecutionCount != nil {
					t.Errorf("cell %d has outputs or an execution count: clear them before committing", i)
				}
				if tags, _ := c.Metadata["tags"].([]any); len(tags) > 0 {
					for _, tag := range tags {
						if tag == "parameters" {
							params++
						}
					}
				}
			}
			if params != 1 {
				t.Errorf("%d cells tagged parameters, want 1", params)
			}
		})
	}
}

// TestNotebooksRun executes every notebook headless, as `detlab run` does,
// with shrunk parameters, and fails on any cell error.
func TestNotebooksRun(t *testing.T) {
	if testing.Short() {
		t.Skip("executes every notebook (minutes): skipped in -short mode")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range notebookFiles(t) {
		t.Run(f, func(t *testing.T) {
			defer os.Chdir(wd) // session.New moves into the notebook's directory
			nb, err := nbrun.ReadFile(filepath.Join(wd, f))
			if err != nil {
				t.Fatal(err)
			}
			figs := t.TempDir()
			params := append([]nbrun.Param{{Name: "figures", Value: figs}}, shrink[f]...)
			if err := nbrun.InjectParameters(nb, params); err != nil {
				t.Fatal(err)
			}
			sess, err := session.New(session.Options{Dir: wd})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			start := time.Now()
			res, err := nbrun.Run(ctx, sess, nb, nbrun.Options{CellTimeout: 5 * time.Minute})
			for _, ce := range res.Errors {
				t.Errorf("%v", ce)
			}
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			t.Logf("%s: %d cells in %v", f, res.Executed, time.Since(start).Round(time.Second))
			if dir := os.Getenv("DETLAB_NOTEBOOK_OUT"); dir != "" {
				if err := nb.WriteFile(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
			for _, name := range wantFigures[f] {
				if st, err := os.Stat(filepath.Join(figs, name)); err != nil || st.Size() == 0 {
					t.Errorf("figure %s not saved: %v", name, err)
				}
			}
			checkImages(t, nb)
		})
	}
}

// checkImages fails when an executed notebook shows no PNG at all.
func checkImages(t *testing.T, nb *nbrun.Notebook) {
	t.Helper()
	b, err := nb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"image/png"`) {
		t.Error("the executed notebook shows no image/png output")
	}
}

// TestNotebooksNbconvert executes every notebook, shrunk, with Jupyter's own
// runner (nbconvert --execute) and the detlab kernel installed into a
// temporary prefix.
func TestNotebooksNbconvert(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Jupyter: skipped in -short mode")
	}
	py := pyenv.Require(t, "apt-get install jupyter-nbconvert python3-nbclient", "nbconvert", "nbclient")
	dir := t.TempDir()
	bin := filepath.Join(dir, "detlab")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/detlab/detlab/kernel/cmd/detlab").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	prefix := filepath.Join(dir, "prefix")
	if out, err := exec.Command(bin, "install", "--prefix", prefix).CombinedOutput(); err != nil {
		t.Fatalf("detlab install: %v\n%s", err, out)
	}
	for _, file := range notebookFiles(t) {
		t.Run(file, func(t *testing.T) {
			work := t.TempDir()
			nb, err := nbrun.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			figs := filepath.Join(work, "figures")
			if err := nbrun.InjectParameters(nb, append([]nbrun.Param{{Name: "figures", Value: figs}}, shrink[file]...)); err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(work, file)
			if err := nb.WriteFile(in); err != nil {
				t.Fatal(err)
			}
			outName := strings.TrimSuffix(file, ".ipynb") + ".out.ipynb"
			cmd := exec.Command(py, "-m", "nbconvert", "--to", "notebook", "--execute",
				"--ExecutePreprocessor.timeout=600", "--output-dir", work, "--output", outName, in)
			cmd.Dir = "."
			cmd.Env = append(os.Environ(),
				"JUPYTER_PATH="+filepath.Join(prefix, "share", "jupyter"),
				"JUPYTER_DATA_DIR="+filepath.Join(work, "data"),
				"JUPYTER_RUNTIME_DIR="+filepath.Join(work, "runtime"),
				"PYTHONDONTWRITEBYTECODE=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("nbconvert --execute: %v\n%s", err, out)
			}
			done, err := nbrun.ReadFile(filepath.Join(work, outName))
			if err != nil {
				t.Fatal(err)
			}
			checkImages(t, done)
			for _, name := range wantFigures[file] {
				if _, err := os.Stat(filepath.Join(figs, name)); err != nil {
					t.Errorf("figure %s not saved: %v", name, err)
				}
			}
		})
	}
}
