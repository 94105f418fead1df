// Package backendmatrix holds a test that runs the library's golden parity
// tests once per GEMM backend lib/compute can use here (DETLAB_BLAS=go,
// openblas, onednn, each with DETLAB_CONV=go: convolutions as im2col +
// that GEMM) and once with oneDNN's convolution primitives as the default
// uses them (row "onednn-conv": DETLAB_BLAS=go, DETLAB_CONV=auto, which
// gives the BatchNorm-folded convolutions to oneDNN), and fails naming the
// settings and the output when any of them fails or is skipped. Each
// package's test binary is built once (go test -c) and run per row under
// go tool test2json.
//
// The parity tests are found, not listed: every top-level test of
// lib/resnet, lib/roialign, lib/rpn, lib/roi and lib/fasterrcnn (and their
// subpackages) that reaches internal/golden's Load, Path or Dir directly or
// through helpers of its package. lib/compute and lib/nn read no golden
// file; their whole test suites run instead (Sgemm against a float64
// reference, the fused-epilogue and panel paths a native library takes
// differently, layer gradients against finite differences).
//
// A backend whose library is absent is skipped with the Debian package to
// install (libopenblas0, libdnnl2). A child process first prints
// compute.Backend() and compute.ConvBackend() for the requested row, and
// lib/compute's TestBackendHonoursEnv and TestConvBackendHonoursEnv in the
// run itself must log the same names, so a silent fallback to Go cannot
// pass. The test is skipped under -short and when ../shared/golden is
// absent. DETLAB_BACKENDMATRIX overrides the rows, e.g.
// DETLAB_BACKENDMATRIX=go,portable,openblas,onednn,onednn-conv.
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
	"path"
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
		fmt.Println(compute.ConvBackend())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// defaultBackends are the rows of backendSpec the matrix runs.
var defaultBackends = []string{"go", "openblas", "onednn", "onednn-conv"}

// backendSpec says, per row, the DETLAB_BLAS and DETLAB_CONV values it
// runs under, how compute.Backend() and compute.ConvBackend() then begin,
// and which Debian package provides the library.
var backendSpec = map[string]struct{ blas, conv, prefix, convPrefix, debian string }{
	"go":          {"go", "go", "Go, ", "go (", ""},
	"portable":    {"portable", "go", "Go, portable", "go (", ""},
	"openblas":    {"openblas", "go", "openblas ", "go (", "libopenblas0"},
	"onednn":      {"onednn", "go", "onednn ", "go (", "libdnnl2"},
	"onednn-conv": {"go", "auto", "Go, ", "onednn ", "libdnnl2"},
	// Every convolution on oneDNN: lib/fasterrcnn's TestGoldenTrain fails
	// (a ReLU kink in the RPN head, see compute.EnvConv), so not a default.
	"onednn-conv-all": {"go", "onednn", "Go, ", "onednn ", "libdnnl2"},
}

// rowEnv returns the environment settings of a row of backendSpec
// (unknown rows: DETLAB_BLAS=row, for TestRunSuite's throwaway module).
func rowEnv(row string) []string {
	spec, ok := backendSpec[row]
	if !ok {
		return []string{compute.EnvBLAS + "=" + row}
	}
	return []string{compute.EnvBLAS + "=" + spec.blas, compute.EnvConv + "=" + spec.conv}
}

// goldenRoots hold the golden parity tests; wholeSuites read no golden
// file, so all their tests run.
var (
	goldenRoots = []string{"lib/resnet", "lib/roialign", "lib/rpn", "lib/roi", "lib/fasterrcnn"}
	wholeSuites = []string{"lib/compute", "lib/nn"}
)

// event is one line of go tool test2json's output.
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
	var suites []*suite
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
			names := compactStrings(tests)
			suites = append(suites, &suite{dir: dir, imp: modulePath + "/" + filepath.ToSlash(rel), run: "^(" + strings.Join(names, "|") + ")$", want: names})
		}
	}
	sort.Slice(suites, func(i, j int) bool { return suites[i].imp < suites[j].imp })
	for _, s := range suites {
		t.Logf("%s: %s", s.imp, strings.Join(s.want, " "))
	}
	for _, r := range wholeSuites {
		suites = append(suites, &suite{dir: filepath.Join(root, r), imp: modulePath + "/" + r})
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		defer cancel()
	}
	// Build each test binary once; every backend runs the same binaries.
	start := time.Now()
	if err := buildSuites(ctx, goBin, root, t.TempDir(), suites); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d test binaries (%.0fs)", len(suites), time.Since(start).Seconds())

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
			env := strings.Join(rowEnv(b), " ")
			name, convName := probe(t, b)
			if strings.Contains(name, "not installed") || strings.Contains(convName, "not installed") {
				t.Skipf("%s: library absent, install %s (%s; %s)", env, spec.debian, name, convName)
			}
			if !strings.HasPrefix(name, spec.prefix) || strings.Contains(name, " but ") {
				t.Fatalf("%s: compute.Backend() = %q in a child process, want %q...", env, name, spec.prefix)
			}
			if !strings.HasPrefix(convName, spec.convPrefix) {
				t.Fatalf("%s: compute.ConvBackend() = %q in a child process, want %q...", env, convName, spec.convPrefix)
			}
			t.Logf("%s: %s; convolutions: %s", env, name, convName)
			start := time.Now()
			passed := 0
			for _, s := range suites {
				run, err := runSuite(ctx, goBin, s, b)
				if err != nil {
					t.Error(err)
					continue
				}
				// Every parity test ran and passed: a skipped one (a
				// golden file missing) does not count as parity.
				for _, tn := range s.want {
					switch a := run.result[tn]; a {
					case "pass":
						passed++
					default:
						t.Errorf("%s: %s %s: %s, want pass\n%s", env, s.imp, tn, orNone(a), tail(run.testOutput[tn]))
					}
				}
				// The child's own lib/compute must have run on the
				// backend the probe named.
				if s.imp == modulePath+"/lib/compute" && !strings.Contains(run.output, "detlab-blas: "+name+"\n") {
					t.Errorf("%s: lib/compute's TestBackendHonoursEnv did not log %q in the child run", env, "detlab-blas: "+name)
				}
				if s.imp == modulePath+"/lib/compute" && !strings.Contains(run.output, "detlab-conv: "+convName+"\n") {
					t.Errorf("%s: lib/compute's TestConvBackendHonoursEnv did not log %q in the child run", env, "detlab-conv: "+convName)
				}
			}
			t.Logf("%s: %d golden parity tests passed, plus lib/compute's and lib/nn's whole suites (%.0fs)", env, passed, time.Since(start).Seconds())
		})
	}
}

// probe runs this test binary with row b's environment and returns the
// compute.Backend() and compute.ConvBackend() it prints.
func probe(t *testing.T, b string) (gemm, conv string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), envProbe+"=1"), rowEnv(b)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probing %s: %v\n%s", strings.Join(rowEnv(b), " "), err, out)
	}
	gemm, conv, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	return gemm, strings.TrimSpace(conv)
}

// suite is one package's test binary and what each backend runs of it.
type suite struct {
	dir  string   // package directory; the binary runs there, as under go test
	imp  string   // import path
	run  string   // -test.run pattern; empty runs every test
	want []string // tests that must pass
	bin  string   // the built test binary
}

// buildSuites builds every suite's test binary into dir with one
// `go test -c` run (a package without tests gets none: an error).
func buildSuites(ctx context.Context, goBin, root, dir string, suites []*suite) error {
	args := []string{"test", "-c", "-o", dir + string(filepath.Separator)}
	seen := map[string]string{}
	for _, s := range suites {
		base := path.Base(s.imp)
		if other, dup := seen[base]; dup {
			return fmt.Errorf("backendmatrix: %s and %s would both build %s.test", other, s.imp, base)
		}
		seen[base] = s.imp
		s.bin = filepath.Join(dir, base+".test")
		args = append(args, s.imp)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("backendmatrix: go %s: %v\n%s", strings.Join(args, " "), err, tail(string(out)))
	}
	for _, s := range suites {
		if _, err := os.Stat(s.bin); err != nil {
			return fmt.Errorf("backendmatrix: %s built no test binary: %w", s.imp, err)
		}
	}
	return nil
}

// childRun is what one test binary reported.
type childRun struct {
	result     map[string]string // top-level test -> pass, fail or skip
	testOutput map[string]string // top-level test -> its output
	output     string            // everything it printed
}

// runSuite runs s's test binary with row b's environment (rowEnv) under
// go tool test2json and returns an error naming the settings and showing
// the output when the binary fails.
func runSuite(ctx context.Context, goBin string, s *suite, b string) (*childRun, error) {
	args := []string{"tool", "test2json", "-p", s.imp, s.bin, "-test.v=test2json", "-test.count=1"}
	if s.run != "" {
		args = append(args, "-test.run="+s.run)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), rowEnv(b)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	run := &childRun{result: map[string]string{}, testOutput: map[string]string{}}
	failed := false
	var raw strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			raw.WriteString(sc.Text() + "\n")
			continue
		}
		run.output += e.Output
		switch {
		case e.Test != "":
			top, _, _ := strings.Cut(e.Test, "/")
			run.testOutput[top] += e.Output
			if top == e.Test && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip") {
				run.result[top] = e.Action
			}
		case e.Action == "fail":
			failed = true
		}
	}
	if err != nil || failed {
		var msg strings.Builder
		fmt.Fprintf(&msg, "%s: %s failed (%v)\n", strings.Join(rowEnv(b), " "), s.imp, err)
		if ctx.Err() != nil {
			fmt.Fprintf(&msg, "out of time (%v): the test binary's -timeout is near; on a loaded machine run this test with -timeout 30m\n", ctx.Err())
		}
		fmt.Fprintf(&msg, "%s%s%s", tail(run.output), raw.String(), tail(stderr.String()))
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
