// Package integration runs the detlab kernel under the real Jupyter tools:
// the conformance suite (python3-jupyter-kernel-test), jupyter_client,
// nbclient/nbconvert, nbformat's validator, and the `detlab` command itself.
// Tests skip, naming the Debian package to install, when a tool is missing,
// and under -short (they build the detlab binary).
//
//	apt-get install python3-jupyter-client python3-jupyter-kernel-test jupyter-nbconvert python3-nbclient
//	go test ./kernel/integration/
//	go test -run '^$' -bench Jupyter -benchtime 1x ./kernel/integration/   # latency and load figures
package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/detlab/detlab/internal/pyenv"
)

// pythonModules maps the Python modules the tests import to their Debian packages.
var pythonModules = map[string]string{
	"jupyter_client":      "python3-jupyter-client",
	"jupyter_kernel_test": "python3-jupyter-kernel-test",
	"nbconvert":           "jupyter-nbconvert",
	"nbclient":            "python3-nbclient",
	"nbformat":            "python3-nbformat",
}

// python returns an interpreter that imports every module in mods (see
// pyenv.Candidates), or skips the test naming the Debian packages to install.
func python(t testing.TB, mods ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	var pkgs []string
	for _, m := range mods {
		pkgs = append(pkgs, pythonModules[m])
	}
	return pyenv.Require(t, "apt-get install "+strings.Join(pkgs, " "), mods...)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// detlab returns the path of a detlab binary: $DETLAB_BIN, or one built once
// per test run.
func detlab(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DETLAB_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "detlab-integration-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "detlab")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/detlab/detlab/kernel/cmd/detlab")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building detlab: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// installKernel installs the kernelspec into a temporary prefix and returns
// the environment that makes Jupyter find it, and the kernel name.
func installKernel(t testing.TB) (env []string, name string) {
	t.Helper()
	bin := detlab(t)
	prefix := t.TempDir()
	name = "detlab-test"
	out, err := exec.Command(bin, "install", "--prefix", prefix, "--name", name).CombinedOutput()
	if err != nil {
		t.Fatalf("detlab install: %v\n%s", err, out)
	}
	env = append(os.Environ(),
		"JUPYTER_PATH="+filepath.Join(prefix, "share", "jupyter"),
		"JUPYTER_DATA_DIR="+t.TempDir(), // keep the user's own kernels and runtime files out
		"JUPYTER_RUNTIME_DIR="+t.TempDir(),
		"DETLAB_KERNEL_NAME="+name,
		"PYTHONDONTWRITEBYTECODE=1",
	)
	return env, name
}

func TestKernelspecFound(t *testing.T) {
	py := python(t, "jupyter_client")
	env, name := installKernel(t)
	cmd := exec.Command(py, "-c", `import json; from jupyter_client.kernelspec import KernelSpecManager as M
s = M().get_kernel_spec("`+name+`"); print(json.dumps({"argv": s.argv, "display_name": s.display_name, "language": s.language, "interrupt_mode": s.interrupt_mode}))`)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kernelspec lookup: %v\n%s", err, out)
	}
	var spec struct {
		Argv          []string `json:"argv"`
		DisplayName   string   `json:"display_name"`
		Language      string   `json:"language"`
		InterruptMode string   `json:"interrupt_mode"`
	}
	if err := json.Unmarshal(out, &spec); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(spec.Argv) != 3 || !filepath.IsAbs(spec.Argv[0]) || spec.DisplayName != "Go (detlab)" || spec.Language != "go" || spec.InterruptMode != "message" {
		t.Fatalf("kernelspec as Jupyter sees it: %s", out)
	}
}

func TestConformance(t *testing.T) {
	py := python(t, "jupyter_client", "jupyter_kernel_test")
	env, _ := installKernel(t)
	cmd := exec.Command(py, "-m", "unittest", "-v", "detlab_conformance")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	t.Logf("conformance suite:\n%s", out)
	if err != nil {
		t.Fatalf("conformance suite failed: %v", err)
	}
}

// outputsOf returns each code cell's outputs of a notebook file, leaving out
// a cell of injected parameters.
func outputsOf(t *testing.T, path string) [][]map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nb struct {
		Cells []struct {
			CellType string           `json:"cell_type"`
			Outputs  []map[string]any `json:"outputs"`
			Metadata struct {
				Tags []string `json:"tags"`
			} `json:"metadata"`
		}
	}
	if err := json.Unmarshal(b, &nb); err != nil {
		t.Fatal(err)
	}
	var outs [][]map[string]any
	for _, c := range nb.Cells {
		if c.CellType == "code" && !(len(c.Metadata.Tags) > 0 && c.Metadata.Tags[0] == "injected-parameters") {
			outs = append(outs, c.Outputs)
		}
	}
	return outs
}

// checkSmoke checks the executed testdata/smoke.ipynb.
func checkSmoke(t *testing.T, path, greeting string) {
	t.Helper()
	outs := outputsOf(t, path)
	if len(outs) != 5 {
		t.Fatalf("%d code cells, want 5", len(outs))
	}
	find := func(cell int, typ string) map[string]any {
		for _, o := range outs[cell] {
			if o["output_type"] == typ {
				return o
			}
		}
		t.Fatalf("cell %d: no %s output in %v", cell, typ, outs[cell])
		return nil
	}
	if text := find(1, "stream")["text"]; !strings.Contains(joinText(text), greeting+" from detlab") {
		t.Errorf("print: %v", text)
	}
	if data := find(2, "execute_result")["data"].(map[string]any); joinText(data["text/plain"]) != "42" {
		t.Errorf("n*2+2 = %v", data)
	}
	if data := find(3, "execute_result")["data"].(map[string]any); data["image/png"] == nil {
		t.Errorf("image.Image result has no image/png: %v", data)
	}
	if data := find(4, "display_data")["data"].(map[string]any); data["text/markdown"] == nil {
		t.Errorf("display.Markdown: %v", data)
	}
}

// joinText flattens nbformat's multiline strings (a string or a list of lines).
func joinText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		var b strings.Builder
		for _, s := range v {
			b.WriteString(joinText(s))
		}
		return b.String()
	}
	return ""
}

func TestNbconvertExecute(t *testing.T) {
	py := python(t, "nbconvert", "nbclient")
	env, name := installKernel(t)
	dir := t.TempDir()
	cmd := exec.Command(py, "-m", "nbconvert", "--to", "notebook", "--execute",
		"--ExecutePreprocessor.kernel_name="+name, "--ExecutePreprocessor.timeout=120",
		"--output-dir", dir, "--output", "smoke.out.ipynb", "testdata/smoke.ipynb")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nbconvert --execute: %v\n%s", err, out)
	}
	checkSmoke(t, filepath.Join(dir, "smoke.out.ipynb"), "hello")
}

func validate(t *testing.T, py, path string) {
	t.Helper()
	out, err := exec.Command(py, "-c", "import nbformat, sys; nbformat.validate(nbformat.read(sys.argv[1], as_version=4))", path).CombinedOutput()
	if err != nil {
		t.Fatalf("nbformat.validate(%s): %v\n%s", path, err, out)
	}
}

func TestDetlabRun(t *testing.T) {
	py := python(t, "nbformat")
	bin := detlab(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "smoke.out.ipynb")
	cmd := exec.Command(bin, "run", "testdata/smoke.ipynb", "-o", out, "-p", "greeting=bonjour", "-q")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("detlab run: %v\n%s", err, b)
	}
	validate(t, py, out)
	checkSmoke(t, out, "bonjour")

	failing := filepath.Join(dir, "failing.out.ipynb")
	cmd = exec.Command(bin, "run", "testdata/failing.ipynb", "-o", failing)
	b, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("failing notebook: exit %v, want 1\n%s", err, b)
	}
	if !strings.Contains(string(b), "undefinedName") {
		t.Errorf("the cell's error is not printed:\n%s", b)
	}
	validate(t, py, failing)
	outs := outputsOf(t, failing)
	if len(outs[1]) != 1 || outs[1][0]["output_type"] != "error" || len(outs[2]) != 0 {
		t.Errorf("outputs of the failing notebook: %v", outs)
	}
}

// BenchmarkJupyterClient reports, through jupyter_client, the time from
// starting the kernel to its kernel_info_reply, the round trip of
// execute("1+1") (request sent -> status idle), and for 10,000 back-to-back
// executes the resident memory growth; it fails if a reply is lost or
// reordered. Run with -benchtime 1x.
func BenchmarkJupyterClient(b *testing.B) {
	py := python(b, "jupyter_client")
	env, name := installKernel(b)
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(py, "bench.py", name, "300", "10000")
		cmd.Env = env
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		b.Logf("%s", out)
		if err != nil {
			b.Fatalf("bench.py: %v", err)
		}
		var r struct {
			Start float64 `json:"start_to_kernel_info_ms"`
			RT    struct {
				Median, P90 float64
			} `json:"roundtrip_ms"`
			Raw struct {
				Median float64
			} `json:"roundtrip_raw_ms"`
			Load struct {
				Growth []float64 `json:"rss_growth_kib"`
			} `json:"load"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.Start, "ms-start-to-kernel-info")
		b.ReportMetric(r.RT.Median, "ms-roundtrip-median")
		b.ReportMetric(r.RT.P90, "ms-roundtrip-p90")
		b.ReportMetric(r.Raw.Median, "ms-roundtrip-raw-session-median")
		if len(r.Load.Growth) == 2 {
			b.ReportMetric(r.Load.Growth[0], "KiB-rss-growth-first-10k")
			b.ReportMetric(r.Load.Growth[1], "KiB-rss-growth-second-10k")
		}
	}
}
