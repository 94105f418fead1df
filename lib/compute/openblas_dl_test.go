//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package compute

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// loadedOpenBLAS returns the loaded library or skips, naming the package
// to install.
func loadedOpenBLAS(tb testing.TB) *openblasLib {
	tb.Helper()
	lib, err := openBLAS()
	if errors.Is(err, errNoOpenBLAS) {
		tb.Skipf("OpenBLAS absent, install libopenblas0 (apt-get install libopenblas0): %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return lib
}

// openblasShapes are products at or above smallGemm, so they reach sgemm_
// rather than the Go fallback, with odd sizes and padded leading
// dimensions.
var openblasShapes = []struct {
	m, n, k, pad int
}{
	{16, 16, 16, 0},
	{17, 33, 9, 3},
	{1, 300, 20, 0},
	{300, 1, 20, 5},
	{64, 49, 576, 0},
	{129, 65, 257, 7},
	{40, 200, 3, 1},
}

// TestOpenBLASMatchesGo checks sgemm_'s row-major mapping (operands and m,
// n swapped, transposes and leading dimensions) against the Go backend on
// a table of shapes, every transpose pair, alpha and beta, and that it
// leaves C's padding columns alone.
func TestOpenBLASMatchesGo(t *testing.T) {
	lib := loadedOpenBLAS(t)
	r := rand.New(rand.NewSource(7))
	for _, s := range openblasShapes {
		if s.m*s.n*s.k < smallGemm {
			t.Fatalf("shape %+v is under smallGemm (%d) and would not reach OpenBLAS", s, smallGemm)
		}
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, ab := range [][2]float32{{1, 0}, {-0.5, 1}, {2, 0.25}} {
				transA, transB, alpha, beta := tr[0], tr[1], ab[0], ab[1]
				t.Run(fmt.Sprintf("m%d_n%d_k%d_pad%d_tA%v_tB%v_a%g_b%g", s.m, s.n, s.k, s.pad, transA, transB, alpha, beta), func(t *testing.T) {
					ar, br, lda, ldb, ldc := operandLayout(s.m, s.n, s.k, s.pad, transA, transB)
					a, b := randSlice(r, ar*lda), randSlice(r, br*ldb)
					c := randSlice(r, s.m*ldc)
					want := append([]float32(nil), c...)
					sgemmGo(transA, transB, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, want, ldc)
					lib.sgemm(transA, transB, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, c, ldc)
					for i := 0; i < s.m; i++ {
						for j := 0; j < ldc; j++ {
							got, w := c[i*ldc+j], want[i*ldc+j]
							if j >= s.n {
								if math.Float32bits(got) != math.Float32bits(w) {
									t.Fatalf("padding C[%d,%d] changed to %v, want %v", i, j, got, w)
								}
								continue
							}
							tol := 1e-5 * float64(1+s.k) * (1 + math.Abs(float64(w)))
							if d := math.Abs(float64(got - w)); !(d <= tol) {
								t.Fatalf("C[%d,%d] = %v, Go gives %v (diff %g > %g)", i, j, got, w, d, tol)
							}
						}
					}
				})
			}
		}
	}
}

// TestOpenBLASConcurrentCalls checks that calls running at once each keep
// their own argument block: every goroutine multiplies a different shape
// and must get its own result.
func TestOpenBLASConcurrentCalls(t *testing.T) {
	lib := loadedOpenBLAS(t)
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			m, n, k := 20+w, 30+2*w, 10+3*w
			a, b := randSlice(r, m*k), randSlice(r, k*n)
			want := make([]float32, m*n)
			sgemmGo(false, w%2 == 1, m, n, k, 1, a, k, b, ldbFor(w%2 == 1, n, k), 0, want, n)
			for range 50 {
				c := make([]float32, m*n)
				lib.sgemm(false, w%2 == 1, m, n, k, 1, a, k, b, ldbFor(w%2 == 1, n, k), 0, c, n)
				for i := range c {
					if d := math.Abs(float64(c[i] - want[i])); d > 1e-4*float64(k) {
						errs <- fmt.Errorf("worker %d (m%d n%d k%d): C[%d] = %v, want %v", w, m, n, k, i, c[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// ldbFor is B's leading dimension for a k x n product, B stored transposed
// or not, unpadded.
func ldbFor(transB bool, n, k int) int {
	if transB {
		return k
	}
	return n
}

// TestOpenBLASCallAllocatesNothing checks that a steady-state call into
// sgemm_ allocates nothing on the Go heap (cblas_sgemm bound with
// purego.RegisterLibFunc allocated 12 times, 400 bytes, per call).
func TestOpenBLASCallAllocatesNothing(t *testing.T) {
	if openblasRace {
		t.Skip("allocation counts under the race detector include its sync.Pool drops")
	}
	lib := loadedOpenBLAS(t)
	cases := []struct {
		name           string
		m, n, k        int
		transA, transB bool
	}{
		{"smallest_to_openblas", 16, 16, 16, false, false},
		{"transposed", 64, 49, 96, true, true},
		{"go_fallback", 4, 4, 4, false, true},
	}
	r := rand.New(rand.NewSource(1))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b, c := randSlice(r, tc.m*tc.k), randSlice(r, tc.k*tc.n), make([]float32, tc.m*tc.n)
			lda, ldb := tc.k, tc.n
			if tc.transA {
				lda = tc.m
			}
			if tc.transB {
				ldb = tc.k
			}
			call := func() { lib.sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 1, a, lda, b, ldb, 0, c, tc.n) }
			call()
			if n := testing.AllocsPerRun(200, call); n != 0 {
				t.Fatalf("a steady-state OpenBLAS Sgemm (m%d n%d k%d) allocated %.1f times per call, want 0", tc.m, tc.n, tc.k, n)
			}
		})
	}
}

// TestOpenBLASAllocationsAfterCollection measures what a call allocates
// right after a garbage collection: purego.SyscallN keeps its own argument
// block in a sync.Pool, whose per-P cache the runtime drops at each
// collection and remakes at the next Get. That is at most a few
// allocations per collection, never per call.
func TestOpenBLASAllocationsAfterCollection(t *testing.T) {
	if openblasRace {
		t.Skip("allocation counts under the race detector include its sync.Pool drops")
	}
	lib := loadedOpenBLAS(t)
	r := rand.New(rand.NewSource(1))
	a, b, c := randSlice(r, 32*32), randSlice(r, 32*32), make([]float32, 32*32)
	call := func() { lib.sgemm(false, false, 32, 32, 32, 1, a, 32, b, 32, 0, c, 32) }
	call()
	const rounds = 20
	var inGC uint64
	for range rounds {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		for range 100 {
			call()
		}
		runtime.ReadMemStats(&m1)
		inGC += m1.Mallocs - m0.Mallocs
	}
	perCollection := float64(inGC) / rounds
	t.Logf("after each collection, 100 calls allocated %.1f times in all", perCollection)
	if perCollection > 4 {
		t.Fatalf("100 calls after a collection allocated %.1f times, want at most 4 (the pool's cache), not one per call", perCollection)
	}
}

// TestBlas64BitInts checks the config check that refuses an OpenBLAS built
// with 64-bit integers, whose sgemm_ would read our int32 arguments wrong.
func TestBlas64BitInts(t *testing.T) {
	cases := []struct {
		config string
		want   bool
	}{
		{"OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64", false},
		{"OpenBLAS 0.3.21 USE64BITINT DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64", true},
		{"OpenBLAS 0.3.26 use64bitint", true},
		{"", false},
		{"OpenBLAS 0.3.21 NOUSE64BITINTX", false},
	}
	for _, tc := range cases {
		if got := blas64BitInts(tc.config); got != tc.want {
			t.Errorf("blas64BitInts(%q) = %v, want %v", tc.config, got, tc.want)
		}
	}
}

// TestOpenBLASBadPath checks that DETLAB_OPENBLAS naming a missing or
// non-library file gives errNoOpenBLAS with the path in the message.
func TestOpenBLASBadPath(t *testing.T) {
	notLib, err := filepath.Abs("openblas_dl_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/nonexistent/libopenblas-detlab.so", notLib} {
		t.Setenv(EnvOpenBLASPath, p)
		lib, err := loadOpenBLAS(1)
		if lib != nil || !errors.Is(err, errNoOpenBLAS) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s=%s: got %v, %v; want errNoOpenBLAS naming the path", EnvOpenBLASPath, p, lib, err)
		}
	}
}

// BenchmarkOpenBLASCall measures one small product through sgemm_, where
// the foreign call's own cost shows.
func BenchmarkOpenBLASCall(b *testing.B) {
	lib := loadedOpenBLAS(b)
	r := rand.New(rand.NewSource(1))
	for _, n := range []int{16, 64} {
		b.Run(fmt.Sprintf("n%d", n), func(b *testing.B) {
			a, bm, c := randSlice(r, n*n), randSlice(r, n*n), make([]float32, n*n)
			b.ReportAllocs()
			for b.Loop() {
				lib.sgemm(false, false, n, n, n, 1, a, n, bm, n, 0, c, n)
			}
		})
	}
}
