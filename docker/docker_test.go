package docker

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var dockerfiles = []string{"Dockerfile.cpu", "Dockerfile.gpu"}

// runtimePackages are the Debian packages a detlab image needs at run time:
// OpenBLAS, and Jupyter's client, runner and Notebook server. The images must
// install each, and CI must install each too, so that the tests exercise what
// the images ship. (CI installs more, for its tests alone: the conformance
// suite, chromium, protobuf.)
var runtimePackages = []string{"libopenblas0", "python3-jupyter-client", "jupyter-nbconvert",
	"python3-nbclient", "jupyter-notebook"}

// instructions returns a Dockerfile's instructions with continuation lines
// joined and comments dropped.
func instructions(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDockerfiles checks the images' references: COPY sources, go build
// targets, detlab install flags, the start script, and the base images.
func TestDockerfiles(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	buildRE := regexp.MustCompile(`go build (?:-o \S+ )?(\./\S+)`)
	installRE := regexp.MustCompile(`detlab install((?: --?[a-z-]+)*)`)
	for _, df := range dockerfiles {
		t.Run(df, func(t *testing.T) {
			ins := instructions(t, df)
			var from, cmd string
			var builds []string
			for _, in := range ins {
				fields := strings.Fields(in)
				switch strings.ToUpper(fields[0]) {
				case "FROM":
					from = fields[1]
				case "COPY":
					for _, src := range fields[1 : len(fields)-1] {
						if _, err := os.Stat(filepath.Join(root, src)); err != nil {
							t.Errorf("COPY source %s: %v", src, err)
						}
					}
				case "RUN":
					for _, m := range buildRE.FindAllStringSubmatch(in, -1) {
						builds = append(builds, m[1])
					}
					for _, m := range installRE.FindAllStringSubmatch(in, -1) {
						for _, flag := range strings.Fields(m[1]) {
							checkInstallFlag(t, root, flag)
						}
					}
				case "CMD":
					cmd = in
				}
			}
			if from == "" {
				t.Error("no FROM")
			}
			if df == "Dockerfile.gpu" && !regexp.MustCompile(`^nvidia/cuda:(1[2-9]|[2-9]\d)\.[\d.]+-runtime`).MatchString(from) {
				t.Errorf("GPU base %q is not an NVIDIA CUDA 12+ runtime image", from)
			}
			if len(builds) == 0 {
				t.Error("no go build of detlab")
			}
			for _, b := range builds {
				c := exec.Command("go", "list", "-e", "-f", "{{.Name}} {{if .Error}}{{.Error}}{{end}}", b)
				c.Dir = root // the images build from the repository root
				out, err := c.CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != "main" {
					t.Errorf("go build target %s: %s %v", b, out, err)
				}
			}
			if !strings.Contains(cmd, "/opt/detlab/docker/start-jupyter.sh") {
				t.Errorf("CMD %q does not run the start script", cmd)
			}
			text, _ := os.ReadFile(df)
			ci := map[string]bool{}
			for _, pkg := range ciPackages(t, root) {
				ci[pkg] = true
			}
			for _, pkg := range runtimePackages {
				if !regexp.MustCompile(`\s` + regexp.QuoteMeta(pkg) + `\s`).MatchString(string(text)) {
					t.Errorf("does not install %s", pkg)
				}
				if !ci[pkg] {
					t.Errorf("installs %s, which .ci/run does not: the tests do not cover it", pkg)
				}
			}
		})
	}
}

// ciPackages returns the Debian packages .ci/run installs.
func ciPackages(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "\\\n", " ")
	m := regexp.MustCompile(`apt-get install ([^\n>]*)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal(".ci/run installs nothing with apt-get install")
	}
	var pkgs []string
	for _, f := range strings.Fields(m[1]) {
		if !strings.HasPrefix(f, "-") {
			pkgs = append(pkgs, f)
		}
	}
	return pkgs
}

// checkInstallFlag checks that `detlab install` declares flag, by its source.
func checkInstallFlag(t *testing.T, root, flag string) {
	t.Helper()
	name := strings.TrimLeft(flag, "-")
	src, err := os.ReadFile(filepath.Join(root, "kernel", "cmd", "detlab", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `"`+name+`"`) {
		t.Errorf("detlab install has no flag %s", flag)
	}
}

// TestStartScript checks the start script is executable, parses, uses the
// configurable port and token, and refuses no token silently.
func TestStartScript(t *testing.T) {
	st, err := os.Stat("start-jupyter.sh")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&0o111 == 0 {
		t.Error("start-jupyter.sh is not executable")
	}
	if out, err := exec.Command("sh", "-n", "start-jupyter.sh").CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
	b, _ := os.ReadFile("start-jupyter.sh")
	for _, want := range []string{"JUPYTER_PORT", "JUPYTER_TOKEN", "--NotebookApp.token=", "--port="} {
		if !strings.Contains(string(b), want) {
			t.Errorf("start-jupyter.sh lacks %s", want)
		}
	}
}

// TestGoBuild builds the command the images build, as they do.
func TestGoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds detlab: skipped in -short mode")
	}
	out, err := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "detlab"), "../kernel/cmd/detlab").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./kernel/cmd/detlab: %v\n%s", err, out)
	}
}
