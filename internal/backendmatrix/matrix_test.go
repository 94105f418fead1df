// Package backendmatrix holds a test that runs the library's golden parity
// tests once per GEMM backend lib/compute can use here (DETLAB_BLAS=go,
// openblas, onednn), each in a child `go test -json`, and fails naming the
// backend and the output when any of them fails or is skipped.
//
// The parity tests are found, not listed: every top-level test of
// lib/resnet, lib/roialign, lib/rpn, lib/roi and lib/fasterrcnn (and their
// subpackages) that reaches internal/golden's Load, Path or Dir directly or
// through helpers of its package. lib/compute and lib/nn read no golden
// file; their whole test suites run instead (Sgemm against a float64
// reference, layer gradients against finite differences).
//
// A backend whose library is absent is skipped with the Debian package to
// install (libopenblas0, libdnnl2). A child process first prints
// compute.Backend() for the requested backend, and lib/compute's
// TestBackendHonoursEnv in the run itself must log the same name, so a
// silent fallback to Go cannot pass. The test is skipped under -short and
// when ../shared/golden is absent. DETLAB_BACKENDMATRIX overrides the
// backends, e.g. DETLAB_BACKENDMATRIX=go,portable,openblas,onednn.
//
//	go test -count=1 -v ./internal/backendmatrix
package backendmatrix

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/compute"
)

// modulePath is the module the child's events name packages in.
const modulePath = "github.com/detlab/detlab"

// envProbe makes the test binary print compute.Backend() and exit.
const envProbe = "DETLAB_BACKENDMATRIX_PROBE"

// envBackends overrides defaultBackends (comma-separated).
const envBackends = "DETLAB_BACKENDMATRIX"

func TestMain(m *testing.M) {
	if os.Getenv(envProbe) == "1" {
		fmt.Println(compute.Backend())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// defaultBackends are the DETLAB_BLAS values the matrix runs.
var defaultBackends = []string{"go", "openblas", "onednn"}

// backendSpec says how a backend names itself and which Debian package
// provides its library.
var backendSpec = map[string]struct{ prefix, debian string }{
	"go":       {"Go, ", ""},
	"portable": {"Go, portable", ""},
	"openblas": {"openblas ", "libopenblas0"},
	"onednn":   {"onednn ", "libdnnl2"},
}

// goldenRoots hold the golden parity tests; wholeSuites read no golden
// file, so all their tests run.
var (
	goldenRoots = []string{"lib/resnet", "lib/roialign", "lib/rpn", "lib/roi", "lib/fasterrcnn"}
	wholeSuites = []string{"lib/compute", "lib/nn"}
)

// event is one line of `go test -json`.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func TestParityOnEveryBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the golden parity tests once per GEMM backend (about a minute each): skipped under -short")
	}
	if _, err := os.Stat(golden.Dir()); err != nil {
		t.Skipf("golden files absent (%v): the parity tests need ../shared/golden", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	want := map[string][]string{} // import-path-relative package dir -> parity tests
	var union []string
	for _, r := range goldenRoots {
		found, err := parityTests(filepath.Join(root, r))
		if err != nil {
			t.Fatal(err)
		}
		if len(found) == 0 {
			t.Fatalf("no golden parity test found under %s: did the tests stop reading internal/golden?", r)
		}
		for dir, tests := range found {
			rel, err := filepath.Rel(root, dir)
			if err != nil {
				t.Fatal(err)
			}
			pkg := "./" + filepath.ToSlash(rel)
			pkgs = append(pkgs, pkg)
			want[pkg] = tests
			union = append(union, tests...)
		}
	}
	sort.Strings(pkgs)
	sort.Strings(union)
	union = compactStrings(union)
	runGolden := "^(" + strings.Join(union, "|") + ")$"
	for _, p := range pkgs {
		t.Logf("%s: %s", p, strings.Join(want[p], " "))
	}

	backends := defaultBackends
	if v := os.Getenv(envBackends); v != "" {
		backends = strings.Split(v, ",")
	}
	for _, b := range backends {
		b = strings.TrimSpace(b)
		t.Run(b, func(t *testing.T) {
			spec, ok := backendSpec[b]
			if !ok {
				t.Fatalf("%s names an unknown backend %q", envBackends, b)
			}
			name := probe(t, b)
			if strings.Contains(name, "not installed") {
				t.Skipf("DETLAB_BLAS=%s: library absent, install %s (%s)", b, spec.debian, name)
			}
			if !strings.HasPrefix(name, spec.prefix) || strings.Contains(name, " but ") {
				t.Fatalf("DETLAB_BLAS=%s: compute.Backend() = %q in a child process, want %q...", b, name, spec.prefix)
			}
			t.Logf("DETLAB_BLAS=%s: %s", b, name)
			start := time.Now()
			ctx := context.Background()
			if d, ok := t.Deadline(); ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
				defer cancel()
			}
			parity, err := runChild(ctx, goBin, root, b, append([]string{"-run", runGolden}, pkgs...))
			if err != nil {
				t.Fatal(err)
			}
			whole, err := runChild(ctx, goBin, root, b, prefixed(wholeSuites))
			if err != nil {
				t.Fatal(err)
			}
			// Every parity test ran and passed: a skipped one (a golden
			// file missing) does not count as parity.
			passed := 0
			for _, p := range pkgs {
				imp := modulePath + "/" + strings.TrimPrefix(p, "./")
				for _, tn := range want[p] {
					switch a := parity.result[imp+" "+tn]; a {
					case "pass":
						passed++
					default:
						t.Errorf("DETLAB_BLAS=%s: %s %s: %s, want pass\n%s", b, p, tn, orNone(a), tail(parity.testOutput[imp+" "+tn]))
					}
				}
			}
			// The child's own lib/compute must have run on the backend the
			// probe named.
			if !strings.Contains(whole.output[modulePath+"/lib/compute"], "detlab-blas: "+name+"\n") {
				t.Errorf("DETLAB_BLAS=%s: lib/compute's TestBackendHonoursEnv did not log %q in the child run", b, "detlab-blas: "+name)
			}
			t.Logf("DETLAB_BLAS=%s: %d golden parity tests passed in %d packages, plus lib/compute and lib/nn whole (%.0fs)", b, passed, len(pkgs), time.Since(start).Seconds())
		})
	}
}

// probe runs this test binary with DETLAB_BLAS=b and returns the
// compute.Backend() it prints.
func probe(t *testing.T, b string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envProbe+"=1", compute.EnvBLAS+"="+b)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probing DETLAB_BLAS=%s: %v\n%s", b, err, out)
	}
	return strings.TrimSpace(string(out))
}

// childRun is what one `go test -json` run reported.
type childRun struct {
	result     map[string]string // "import/path TestName" -> pass, fail, skip
	testOutput map[string]string // "import/path TestName" -> its output
	output     map[string]string // import path -> all its output
}

// runChild runs `go test -count=1 -json args...` in root with DETLAB_BLAS=b
// and returns an error naming the backend and showing the failing
// packages' output when the run fails.
func runChild(ctx context.Context, goBin, root, b string, args []string) (*childRun, error) {
	cmd := exec.CommandContext(ctx, goBin, append([]string{"test", "-count=1", "-json"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), compute.EnvBLAS+"="+b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	run := &childRun{result: map[string]string{}, testOutput: map[string]string{}, output: map[string]string{}}
	var failed []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			run.output[""] += sc.Text() + "\n"
			continue
		}
		run.output[e.Package] += e.Output
		if e.Test != "" {
			k := e.Package + " " + e.Test
			run.testOutput[k] += e.Output
			if !strings.Contains(e.Test, "/") && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip") {
				run.result[k] = e.Action
			}
		} else if e.Action == "fail" {
			failed = append(failed, e.Package)
		}
	}
	if err != nil || len(failed) > 0 {
		var msg strings.Builder
		fmt.Fprintf(&msg, "DETLAB_BLAS=%s: go test %s: %v; failing packages: %v\n", b, strings.Join(args, " "), err, failed)
		if ctx.Err() != nil {
			fmt.Fprintf(&msg, "out of time (%v): the test binary's -timeout is near; on a loaded machine run this test with -timeout 30m\n", ctx.Err())
		}
		for _, p := range failed {
			fmt.Fprintf(&msg, "--- %s\n%s", p, tail(run.output[p]))
		}
		if s := stderr.String() + run.output[""]; s != "" {
			fmt.Fprintf(&msg, "--- stderr\n%s", tail(s))
		}
		return run, errors.New(msg.String())
	}
	return run, nil
}

var onlyWord = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// compactStrings drops adjacent duplicates of a sorted slice and checks
// every name is a plain identifier (safe in a -run pattern).
func compactStrings(s []string) []string {
	var out []string
	for i, v := range s {
		if !onlyWord.MatchString(v) {
			panic("backendmatrix: test name " + v + " is not an identifier")
		}
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func prefixed(dirs []string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = "./" + d
	}
	return out
}

func orNone(a string) string {
	if a == "" {
		return "did not run"
	}
	return a
}

// tail keeps the last 6000 bytes of s.
func tail(s string) string {
	const n = 6000
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}
