package browsertest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/detlab/detlab/internal/pyenv"
	"github.com/detlab/detlab/kernel/nbrun"
)

// chromiumFlags keep the browser headless, sandbox-free (CI runs as root) and
// off the network except for the local server.
var chromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars"}

// shrink makes the quickstart quick.
var shrink = []nbrun.Param{{Name: "trainImages", Value: "8"}, {Name: "evalImages", Value: fmt.Sprint(evalImages)}, {Name: "epochs", Value: "1"}}

// evalImages is the number of test images the shrunk quickstart evaluates
// (it draws the detections of up to 3).
const evalImages = 3

func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DETLAB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: apt-get install chromium")
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func run(t *testing.T, env []string, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = env, dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestQuickstartInBrowser is the real-browser check of issue 6.
func TestQuickstartInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Jupyter and Chromium: skipped in -short mode")
	}
	chromium := findChromium(t)
	py := pyenv.Require(t, "apt-get install jupyter-notebook jupyter-nbconvert python3-nbclient", "notebook", "nbconvert", "nbclient")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	env := append(os.Environ(),
		"JUPYTER_PATH="+filepath.Join(tmp, "prefix", "share", "jupyter"),
		"JUPYTER_DATA_DIR="+filepath.Join(tmp, "data"),
		"JUPYTER_RUNTIME_DIR="+filepath.Join(tmp, "runtime"),
		"JUPYTER_CONFIG_DIR="+filepath.Join(tmp, "config"),
		"PYTHONDONTWRITEBYTECODE=1")
	// Chromium keeps its profile and caches under HOME: a temporary one (not
	// for go build, whose caches live there too).
	browserEnv := append(append([]string{}, env...), "HOME="+tmp)

	// The kernel, installed into a temporary prefix under its usual name.
	bin := filepath.Join(tmp, "detlab")
	run(t, os.Environ(), root, "go", "build", "-o", bin, "./kernel/cmd/detlab")
	run(t, env, root, bin, "install", "--prefix", filepath.Join(tmp, "prefix"))

	// The quickstart, shrunk, executed through Jupyter so its outputs are saved.
	nbDir := filepath.Join(tmp, "notebooks")
	if err := os.MkdirAll(nbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	nb, err := nbrun.ReadFile(filepath.Join(root, "notebooks", "quickstart.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	params := append([]nbrun.Param{{Name: "figures", Value: filepath.Join(tmp, "figures")}}, shrink...)
	if err := nbrun.InjectParameters(nb, params); err != nil {
		t.Fatal(err)
	}
	if err := nb.WriteFile(filepath.Join(nbDir, "quickstart.ipynb")); err != nil {
		t.Fatal(err)
	}
	run(t, env, nbDir, py, "-m", "nbconvert", "--to", "notebook", "--execute", "--inplace",
		"--ExecutePreprocessor.timeout=600", "quickstart.ipynb")
	run(t, env, nbDir, py, "-m", "nbformat.sign", "quickstart.ipynb") // trusted: HTML outputs render too

	// The Notebook server, on loopback, behind a token.
	port, token := freePort(t), fmt.Sprintf("detlab-%d", time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, py, "-m", "notebook", "--no-browser", "--ip=127.0.0.1",
		fmt.Sprintf("--port=%d", port), "--port-retries=0", "--NotebookApp.token="+token,
		"--notebook-dir="+nbDir, "--allow-root")
	srv.Env = env
	// Stop the server as a person would (SIGTERM: it shuts its kernels
	// down), not with CommandContext's SIGKILL, which orphans them.
	srv.Cancel = func() error { return srv.Process.Signal(syscall.SIGTERM) }
	srv.WaitDelay = 20 * time.Second
	logPath := filepath.Join(tmp, "notebook.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatalf("starting the notebook server: %v", err)
	}
	defer func() {
		cancel()
		srv.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("notebook server log:\n%s", b)
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/api/status?token="+token, 60*time.Second)
	// Without the token the server refuses the API.
	if resp, err := http.Get(base + "/api/contents"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /api/contents without the token: %s, want 403", resp.Status)
		}
	}

	page := base + "/notebooks/quickstart.ipynb?token=" + token
	browse := func(extra ...string) []byte {
		args := append(append(append([]string{}, chromiumFlags...), "--user-data-dir="+filepath.Join(tmp, "chromium"),
			"--virtual-time-budget=30000"), extra...)
		args = append(args, page)
		cctx, ccancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer ccancel()
		cmd := exec.CommandContext(cctx, chromium, args...)
		cmd.Env = browserEnv
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", extra, err)
		}
		return out
	}

	dom := string(browse("--dump-dom"))
	checkDOM(t, dom, 1+evalImages, 2)

	outDir := os.Getenv("DETLAB_BROWSER_OUT")
	if outDir == "" {
		outDir = filepath.Join(root, "out", "browser")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outDir, "quickstart.html"), []byte(dom), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(outDir, "quickstart.png")
	os.Remove(shot)
	browse("--screenshot="+shot, "--window-size=1280,7000")
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 10000 {
		t.Fatalf("screenshot %s not written or nearly empty: %v", shot, err)
	}
	t.Logf("screenshot: %s (%d bytes); DOM: %s", shot, st.Size(), filepath.Join(outDir, "quickstart.html"))
}

var (
	pngImgRE   = regexp.MustCompile(`<img[^>]+src="data:image/png;base64,[A-Za-z0-9+/=]{100,}`)
	svgRE      = regexp.MustCompile(`class="output_subarea output_svg`)
	progressRE = regexp.MustCompile(`class="detlab-progress"`)
	errorRE    = regexp.MustCompile(`class="[^"]*output_error`)
)

// checkDOM checks the rendered notebook. The pictures (the ground-truth
// sample and one per evaluated image with detections) are <img> elements
// with data:image/png; the figures (the live loss plot and the loss curves)
// arrive as PNG plus SVG, and the classic Notebook prefers SVG, so they are
// inline <svg> or, in front ends preferring PNG, more <img> elements. The
// progress bar is rendered HTML, and no cell shows an error.
func checkDOM(t *testing.T, dom string, pictures, figures int) {
	t.Helper()
	if !strings.Contains(dom, "Go (detlab)") {
		t.Errorf("the page does not name the kernel Go (detlab)")
	}
	imgs := len(pngImgRE.FindAllString(dom, -1))
	svgs := len(svgRE.FindAllString(dom, -1))
	if imgs < pictures {
		t.Errorf("%d <img> elements with data:image/png in the page, want at least %d (the sample and the detections)", imgs, pictures)
	}
	if imgs+svgs < pictures+figures {
		t.Errorf("%d PNG images and %d SVG figures in the page, want at least %d in all", imgs, svgs, pictures+figures)
	}
	if !progressRE.MatchString(dom) {
		t.Error("the progress bar's HTML is not in the page")
	}
	if errorRE.MatchString(dom) {
		t.Error("the page shows an error output")
	}
	t.Logf("rendered page: %d PNG <img> elements, %d SVG figures, %d bytes of DOM", imgs, svgs, len(dom))
}

func waitHTTP(t *testing.T, url string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the notebook server did not answer %s within %v", url, limit)
}
