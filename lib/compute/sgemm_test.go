package compute

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// operandLayout returns the stored shapes of A and B for an m x n x k
// product with the given transposes (rows x cols each) and leading
// dimensions padded by pad, plus C's, as the table tests lay them out.
func operandLayout(m, n, k, pad int, transA, transB bool) (ar, br, lda, ldb, ldc int) {
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	return ar, br, max(ac, 1) + pad, max(bc, 1) + pad, max(n, 1) + pad
}

// opAt returns op(X)[r, c] of a row-major X with leading dimension ld
// (X^T when trans).
func opAt(x []float32, ld int, trans bool, r, c int) float32 {
	if trans {
		return x[c*ld+r]
	}
	return x[r*ld+c]
}

// refSgemm is the float64 reference: C = alpha*op(A)*op(B) + beta*C, with
// beta == 0 ignoring C.
func refSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				av, bv := opAt(a, lda, transA, i, p), opAt(b, ldb, transB, p, j)
				s += float64(av) * float64(bv)
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(c[i*ldc+j])
			}
			out[i*n+j] = v
		}
	}
	return out
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

type gemmCase struct {
	m, n, k     int
	alpha, beta float32
	pad         int // extra leading-dimension padding
}

var gemmCases = []gemmCase{
	{1, 1, 1, 1, 0, 0},
	{3, 5, 7, 1, 0, 0},
	{7, 3, 1, 2, 0.5, 1},
	{17, 13, 29, 1, 1, 3},
	{33, 65, 31, -1.5, 0, 0},
	{64, 49, 130, 1, 0, 2},
	{5, 0, 3, 1, 0, 0},
	{0, 4, 3, 1, 0, 0},
	{4, 6, 0, 1, 0.25, 0},
	{130, 97, 259, 0.5, -1, 1},
	{9, 300, 70, 1, 0, 5},
	{301, 11, 67, 1, 1, 0},
	{1549, 45, 300, 1, 0.5, 1}, // more rows than one packed A panel (mp), k > kc
	{33, 31, 2100, 1, 0.5, 2},  // k much larger than m and n: split over k (2 workers)
}

// checkSgemmAgainstRef runs f on every case and transposition and compares
// with the float64 reference.
func checkSgemmAgainstRef(t *testing.T, f func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)) {
	t.Helper()
	r := rand.New(rand.NewSource(1))
	for _, tc := range gemmCases {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			transA, transB := tr[0], tr[1]
			name := fmt.Sprintf("m%d_n%d_k%d_tA%v_tB%v_a%g_b%g", tc.m, tc.n, tc.k, transA, transB, tc.alpha, tc.beta)
			t.Run(name, func(t *testing.T) {
				ar, br, lda, ldb, ldc := operandLayout(tc.m, tc.n, tc.k, tc.pad, transA, transB)
				a := randSlice(r, ar*lda)
				b := randSlice(r, br*ldb)
				c := randSlice(r, tc.m*ldc)
				if tc.beta == 0 {
					for i := range c {
						c[i] = float32(math.NaN())
					}
				}
				want := refSgemm(transA, transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
				orig := append([]float32(nil), c...)
				f(transA, transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
				for i := 0; i < tc.m; i++ {
					for j := 0; j < ldc; j++ {
						got := c[i*ldc+j]
						if j >= tc.n {
							if math.Float32bits(got) != math.Float32bits(orig[i*ldc+j]) {
								t.Fatalf("padding C[%d,%d] changed: %v -> %v", i, j, orig[i*ldc+j], got)
							}
							continue
						}
						w := want[i*tc.n+j]
						tol := 1e-5 * (1 + float64(tc.k)) * (1 + math.Abs(w))
						if d := math.Abs(float64(got) - w); !(d <= tol) {
							t.Fatalf("C[%d,%d] = %v, want %v (diff %g > %g)", i, j, got, w, d, tol)
						}
					}
				}
			})
		}
	}
}

func TestSgemm(t *testing.T) {
	checkSgemmAgainstRef(t, Sgemm)
}

func TestSgemmSimple(t *testing.T) {
	checkSgemmAgainstRef(t, func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if m == 0 || n == 0 {
			return
		}
		sgemmSimple(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	})
}

func TestSgemmBadArgs(t *testing.T) {
	cases := []struct {
		name string
		f    func()
	}{
		{"negative m", func() { Sgemm(false, false, -1, 2, 2, 1, nil, 2, nil, 2, 0, nil, 2) }},
		{"short a", func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		}},
		{"small lda", func() {
			Sgemm(false, false, 2, 2, 3, 1, make([]float32, 6), 2, make([]float32, 6), 2, 0, make([]float32, 4), 2)
		}},
		{"short c", func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 4), 2, 0, make([]float32, 3), 2)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic on bad arguments")
				}
			}()
			tc.f()
		})
	}
}
