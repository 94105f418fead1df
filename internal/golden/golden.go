// Package golden gives tests access to the torchvision reference tensors in
// ../shared/golden and the tolerance checks their README defines.
//
// Tests must not assume particular shapes or values: the files may be
// regenerated with other seeds and sizes. Read shapes and configuration from
// the files themselves.
package golden

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/detlab/detlab/lib/weights"
)

// Dir returns the directory holding the golden files: $DETLAB_GOLDEN if set,
// else ../shared/golden relative to the repository root.
func Dir() string {
	if d := os.Getenv("DETLAB_GOLDEN"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	return filepath.Join(root, "..", "shared", "golden")
}

// SharedDir returns the ../shared directory beside the repository.
func SharedDir() string { return filepath.Dir(Dir()) }

var (
	mu    sync.Mutex
	cache = map[string]*weights.File{}
)

// Path returns the path of a golden file, skipping the test when the shared
// directory is absent (it is present in CI).
func Path(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Dir(), name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("golden file %s not found (the torchvision fixtures live in ../shared/golden): %v", p, err)
	}
	return p
}

// Load reads (once per process) a golden safetensors file.
func Load(t testing.TB, name string) *weights.File {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if f, ok := cache[name]; ok {
		return f
	}
	f, err := weights.ReadSafetensorsFile(Path(t, name))
	if err != nil {
		t.Fatalf("golden %s: %v", name, err)
	}
	cache[name] = f
	return f
}

// Entry returns a tensor of a golden file, failing the test if it is absent.
func Entry(t testing.TB, f *weights.File, name string) *weights.Entry {
	t.Helper()
	e, err := f.Get(name)
	if err != nil {
		t.Fatalf("golden: %v", err)
	}
	return e
}

// Metadata decodes the JSON held under key in a golden file's metadata (the
// generator stores its configuration under "config") into v, failing the
// test if the key is absent or its value does not decode.
func Metadata(t testing.TB, f *weights.File, key string, v any) {
	t.Helper()
	raw, ok := f.Metadata[key]
	if !ok {
		t.Fatalf("golden: no %q in the file's metadata", key)
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		t.Fatalf("golden: metadata %q = %q: %v", key, raw, err)
	}
}

// Has reports whether the file holds the named tensor.
func Has(f *weights.File, name string) bool { _, ok := f.Entries[name]; return ok }

// Tol is a tolerance as the golden README states it: an absolute bound per
// element and, when non-zero, a bound on the relative L2 error
// ||got-want|| / ||want||.
type Tol struct {
	Atol  float64
	RelL2 float64
}

// Compare checks got against want and returns a description of the first
// violation, or "" when within tolerance.
func Compare(got, want []float32, tol Tol) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	var maxDiff, num, den float64
	worst := -1
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		d := math.Abs(g - w)
		if math.IsNaN(d) {
			return fmt.Sprintf("element %d: got %v, want %v", i, got[i], want[i])
		}
		if d > maxDiff {
			maxDiff, worst = d, i
		}
		num += d * d
		den += w * w
	}
	rel := 0.0
	if den > 0 {
		rel = math.Sqrt(num / den)
	} else if num > 0 {
		rel = math.Inf(1)
	}
	var msgs []string
	if maxDiff > tol.Atol {
		msgs = append(msgs, fmt.Sprintf("max abs diff %.3g > atol %.3g at element %d (got %v, want %v)", maxDiff, tol.Atol, worst, got[worst], want[worst]))
	}
	if tol.RelL2 > 0 && rel > tol.RelL2 {
		msgs = append(msgs, fmt.Sprintf("rel-L2 %.3g > %.3g", rel, tol.RelL2))
	}
	return strings.Join(msgs, "; ")
}

// Check fails the test when got is not within tol of want. It logs the
// observed error either way, so parity margins show in -v output.
func Check(t testing.TB, name string, got, want []float32, tol Tol) {
	t.Helper()
	if msg := Compare(got, want, tol); msg != "" {
		t.Errorf("%s: %s", name, msg)
		return
	}
	var maxDiff float64
	for i := range got {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
	}
	t.Logf("%s: max abs diff %.3g (atol %.3g)", name, maxDiff, tol.Atol)
}

// CheckShape fails the test when the shapes differ.
func CheckShape(t testing.TB, name string, got, want []int) bool {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: shape %v, want %v", name, got, want)
		return false
	}
	return true
}

// Ints returns an integer golden tensor (indices, labels) as ints.
func Ints(t testing.TB, f *weights.File, name string) []int {
	t.Helper()
	e := Entry(t, f, name)
	out := make([]int, len(e.I64Data))
	for i, v := range e.I64Data {
		out[i] = int(v)
	}
	return out
}

// AlignNearTies returns, for each wanted row k, the index of the got row to
// compare with it. The golden README allows neighbours whose scores differ by
// less than the score tolerance to come out swapped, so a got row may stand
// in for a wanted row when its score is within tol and same(g, k) holds.
// Rows that find no partner keep their own position, so the later element
// check reports them.
func AlignNearTies(gotScores, wantScores []float32, tol float32, same func(g, k int) bool) []int {
	perm := make([]int, len(wantScores))
	used := make([]bool, len(gotScores))
	for k, ws := range wantScores {
		perm[k] = -1
		for g, gs := range gotScores {
			if !used[g] && gs-ws <= tol && ws-gs <= tol && same(g, k) {
				perm[k], used[g] = g, true
				break
			}
		}
	}
	for k := range perm {
		if perm[k] < 0 {
			perm[k] = k
		}
	}
	return perm
}
