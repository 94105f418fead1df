//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package compute

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync"
	"testing"
)

// loadedMatmul returns oneDNN's matmul engine, skipping the test when the
// library is absent (loadedOneDNN names the package to install).
func loadedMatmul(t testing.TB) *dnnlMatmul {
	t.Helper()
	loadedOneDNN(t)
	e, err := matmulEngine()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// matmulOnly is matmulSgemm for every size (no small products in Go),
// failing the test if a product falls back to dnnl_sgemm.
func matmulOnly(t testing.TB) gemmFunc {
	return func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		matmulSgemm(func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			t.Errorf("oneDNN's matmul refused %dx%dx%d (transA %v, transB %v, ld %d %d %d): fell back to dnnl_sgemm", m, n, k, transA, transB, lda, ldb, ldc)
			sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// gemmOperands are one product's operands, laid out by operandLayout with
// random values; C is NaN when beta is 0 (it must be overwritten).
type gemmOperands struct {
	a, b, c       []float32
	lda, ldb, ldc int
}

func newGemmOperands(r *rand.Rand, m, n, k, pad int, transA, transB bool, beta float32) gemmOperands {
	ar, br, lda, ldb, ldc := operandLayout(m, n, k, pad, transA, transB)
	o := gemmOperands{a: randSlice(r, ar*lda), b: randSlice(r, br*ldb), c: randSlice(r, m*ldc), lda: lda, ldb: ldb, ldc: ldc}
	if beta == 0 {
		for i := range o.c {
			if i%o.ldc < n {
				o.c[i] = float32(math.NaN())
			}
		}
	}
	return o
}

// compareGemm checks got against want (both m x n with leading dimension
// ldc, from the same C): equal padding bits, values within the rounding
// of a k-term float32 sum.
func compareGemm(t testing.TB, m, n, k int, got, want []float32, ldc int) {
	t.Helper()
	for i := 0; i < m; i++ {
		for j := 0; j < ldc; j++ {
			g, w := got[i*ldc+j], want[i*ldc+j]
			if j >= n {
				if math.Float32bits(g) != math.Float32bits(w) {
					t.Fatalf("padding C[%d,%d] changed: %v, want %v", i, j, g, w)
				}
				continue
			}
			tol := 1e-5 * (1 + float64(k)) * (1 + math.Abs(float64(w)))
			if d := math.Abs(float64(g) - float64(w)); !(d <= tol) {
				t.Fatalf("C[%d,%d] = %v, Go gives %v (diff %g > %g)", i, j, g, w, d, tol)
			}
		}
	}
}

// TestSgemmOneDNNMatmul runs the Sgemm cases (against a float64 reference)
// through oneDNN's matmul for every size.
func TestSgemmOneDNNMatmul(t *testing.T) {
	loadedMatmul(t)
	gemm := matmulOnly(t)
	checkSgemmAgainstRef(t, func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if m == 0 || n == 0 {
			return
		}
		gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	})
}

// TestOneDNNMatmulMatchesGo runs products through oneDNN's matmul (every
// size, no small ones in Go) and through the Go backend on a table of
// shapes (tiny, k == 0, a classifier row, ResNet-sized and larger),
// transposes, leading dimensions with padding (padding columns must stay
// untouched) and alpha/beta values (0, 1, others; C NaN when beta is 0).
func TestOneDNNMatmulMatchesGo(t *testing.T) {
	e := loadedMatmul(t)
	gemm := matmulOnly(t)
	shapes := []struct{ m, n, k int }{
		{1, 1, 1}, {2, 3, 1}, {7, 5, 3}, {4, 6, 0}, {1, 1000, 512},
		{64, 49, 130}, {130, 97, 259}, {301, 11, 67}, {256, 196, 576}, {512, 49, 1152},
	}
	scalars := []struct{ alpha, beta float32 }{{1, 0}, {1, 1}, {-1.5, 0.25}, {0, 0.5}, {2, 1}}
	r := rand.New(rand.NewSource(3))
	for _, s := range shapes {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, pad := range []int{0, 3} {
				for _, sc := range scalars {
					transA, transB := tr[0], tr[1]
					name := fmt.Sprintf("m%d_n%d_k%d_tA%v_tB%v_pad%d_a%g_b%g", s.m, s.n, s.k, transA, transB, pad, sc.alpha, sc.beta)
					t.Run(name, func(t *testing.T) {
						o := newGemmOperands(r, s.m, s.n, s.k, pad, transA, transB, sc.beta)
						want := append([]float32(nil), o.c...)
						sgemmGo(transA, transB, s.m, s.n, s.k, sc.alpha, o.a, o.lda, o.b, o.ldb, sc.beta, want, o.ldc)
						gemm(transA, transB, s.m, s.n, s.k, sc.alpha, o.a, o.lda, o.b, o.ldb, sc.beta, o.c, o.ldc)
						compareGemm(t, s.m, s.n, s.k, o.c, want, o.ldc)
					})
				}
			}
		}
	}
	for _, sc := range scalars[:3] {
		impl, err := e.implOf(false, false, 256, 196, 576, 576, 196, 196, sc.alpha, sc.beta)
		t.Logf("oneDNN %s matmul 256x196x576, alpha %g, beta %g: %s %v", e.version, sc.alpha, sc.beta, impl, err)
	}
}

// TestOneDNNMatmulRefusedShape checks that a shape oneDNN refuses is
// reported (naming the call) and cached, and that sgemm then declines the
// product without touching C, so the backend can run it elsewhere.
func TestOneDNNMatmulRefusedShape(t *testing.T) {
	e := loadedMatmul(t)
	for i := 0; i < 2; i++ {
		_, err := e.implOf(false, false, -1, 4, 4, 4, 4, 4, 1, 0)
		if err == nil || !strings.Contains(err.Error(), "dnnl_memory_desc_init_by_strides") {
			t.Fatalf("matmul with m = -1: error %v, want one naming dnnl_memory_desc_init_by_strides", err)
		}
	}
	c := []float32{7}
	if e.sgemm(false, false, -1, 1, 1, 1, []float32{1}, 1, []float32{1}, 1, 0.5, c, 1) {
		t.Fatal("sgemm ran a product oneDNN refused")
	}
	if c[0] != 7 {
		t.Fatalf("a declined product changed C to %v", c[0])
	}
}

// TestOneDNNMatmulAllocatesNothing checks that a steady-state Sgemm through
// the oneDNN backend (cached matmul primitive) allocates nothing on the Go
// heap, for plain products, transposes, padding, alpha and beta, and still
// computes them. Through dnnl_sgemm (bound by reflection) the same calls
// made 12 allocations (about 420 B) each (BenchmarkSgemmOneDNN).
func TestOneDNNMatmulAllocatesNothing(t *testing.T) {
	if openblasRace {
		t.Skip("allocation counts under the race detector include its sync.Pool drops")
	}
	lib := loadedOneDNN(t)
	loadedMatmul(t)
	r := rand.New(rand.NewSource(5))
	cases := []struct {
		m, n, k        int
		transA, transB bool
		pad            int
		alpha, beta    float32
	}{
		{64, 196, 576, false, false, 0, 1, 0},
		{64, 196, 576, false, true, 0, 1, 1},
		{576, 196, 64, true, false, 2, 1, 0},
		{100, 80, 90, true, true, 1, -0.5, 0.25},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("m%d_n%d_k%d_tA%v_tB%v_a%g_b%g", tc.m, tc.n, tc.k, tc.transA, tc.transB, tc.alpha, tc.beta), func(t *testing.T) {
			o := newGemmOperands(r, tc.m, tc.n, tc.k, tc.pad, tc.transA, tc.transB, 0)
			call := func() {
				lib.sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, o.c, o.ldc)
			}
			call() // the primitive is made here
			if n := testing.AllocsPerRun(50, call); n != 0 {
				t.Fatalf("a steady-state oneDNN Sgemm allocated %.1f times per call, want 0", n)
			}
			// One more call from a known C, checked against Go.
			for i := range o.c {
				o.c[i] = float32(i % 7)
			}
			want := append([]float32(nil), o.c...)
			sgemmGo(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, want, o.ldc)
			call()
			compareGemm(t, tc.m, tc.n, tc.k, o.c, want, o.ldc)
		})
	}
}

// TestOneDNNMatmulConcurrent runs products of two shapes (so one primitive
// is shared) from several goroutines at once through the backend and
// checks every result: Sgemm's contract allows concurrent calls.
func TestOneDNNMatmulConcurrent(t *testing.T) {
	lib := loadedOneDNN(t)
	loadedMatmul(t)
	r := rand.New(rand.NewSource(9))
	type job struct {
		m, n, k int
		o       gemmOperands
		want    []float32
	}
	var jobs []job
	for _, s := range [][3]int{{48, 70, 90}, {33, 128, 40}} {
		o := newGemmOperands(r, s[0], s[1], s[2], 1, false, true, 1)
		want := append([]float32(nil), o.c...)
		sgemmGo(false, true, s[0], s[1], s[2], 0.5, o.a, o.lda, o.b, o.ldb, 1, want, o.ldc)
		jobs = append(jobs, job{s[0], s[1], s[2], o, want})
	}
	const workers, rounds = 4, 8
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(j job) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				c := append([]float32(nil), j.o.c...)
				lib.sgemm(false, true, j.m, j.n, j.k, 0.5, j.o.a, j.o.lda, j.o.b, j.o.ldb, 1, c, j.o.ldc)
				for x := range c {
					if d := math.Abs(float64(c[x] - j.want[x])); !(d <= 1e-5*float64(1+j.k)*(1+math.Abs(float64(j.want[x])))) {
						errs <- fmt.Sprintf("%dx%dx%d round %d: C[%d] = %v, want %v", j.m, j.n, j.k, i, x, c[x], j.want[x])
						return
					}
				}
			}
		}(jobs[w%len(jobs)])
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestOneDNNMatmulCacheEvicts checks, on an engine of its own with room
// for three primitives, that the oldest are destroyed as new shapes come
// and that products of evicted shapes are made again and still right.
func TestOneDNNMatmulCacheEvicts(t *testing.T) {
	loadedOneDNN(t)
	e, err := openMatmul()
	if err != nil {
		t.Fatal(err)
	}
	e.limit = 3
	r := rand.New(rand.NewSource(13))
	for round := 0; round < 2; round++ {
		for m := 10; m < 18; m++ {
			n, k := 20+m, 30-m
			o := newGemmOperands(r, m, n, k, 0, false, false, 1)
			want := append([]float32(nil), o.c...)
			sgemmGo(false, false, m, n, k, 1, o.a, o.lda, o.b, o.ldb, 1, want, o.ldc)
			if !e.sgemm(false, false, m, n, k, 1, o.a, o.lda, o.b, o.ldb, 1, o.c, o.ldc) {
				t.Fatalf("matmul %dx%dx%d refused", m, n, k)
			}
			compareGemm(t, m, n, k, o.c, want, o.ldc)
			if len(e.cache) > e.limit || len(e.order) != len(e.cache) {
				t.Fatalf("cache holds %d primitives (%d in order), limit %d", len(e.cache), len(e.order), e.limit)
			}
		}
	}
}

// BenchmarkSgemmOneDNNMatmul measures oneDNN's matmul primitive (the
// backend's products) on the benchmark shapes, beside BenchmarkSgemmOneDNN
// (dnnl_sgemm).
func BenchmarkSgemmOneDNNMatmul(b *testing.B) {
	loadedMatmul(b)
	benchSgemm(b, matmulOnly(b))
}
