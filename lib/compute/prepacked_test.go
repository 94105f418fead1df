package compute

import (
	"math"
	"math/rand"
	"testing"
)

// TestPackedBMulSerial compares PackedB.MulSerial and SgemmSerial with a
// float64 product on shapes that cross every block boundary (kc, nc, mp)
// and the micro-tile edges (last strips of 1 to 11 rows, packed from a
// zero-padded copy), with padded leading dimensions.
func TestPackedBMulSerial(t *testing.T) {
	cases := []struct{ m, n, k int }{
		{1, 1, 1}, {4, 64, 64}, {13, 33, 7}, {16, 512, 512}, {196, 64, 64},
		{37, 530, 300}, {1600, 20, 9}, {3, 1030, 513}, {0, 5, 5}, {5, 5, 0},
		{49, 128, 128}, {25, 64, 520}, // Winograd tile counts: one-row and 1-of-12 last strips
	}
	rng := rand.New(rand.NewSource(1))
	for _, tc := range cases {
		lda, ldb, ldc := tc.k+3, tc.n+2, tc.n+5
		a := make([]float32, max(tc.m*lda, 1))
		b := make([]float32, max(tc.k*ldb, 1))
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		want := make([]float64, tc.m*tc.n)
		for i := 0; i < tc.m; i++ {
			for j := 0; j < tc.n; j++ {
				var s float64
				for p := 0; p < tc.k; p++ {
					s += float64(a[i*lda+p]) * float64(b[p*ldb+j])
				}
				want[i*tc.n+j] = s
			}
		}
		pb := NewPackedB(tc.k, tc.n, b, ldb)
		for name, run := range map[string]func(c []float32){
			"PackedB":     func(c []float32) { pb.MulSerial(tc.m, a, lda, c, ldc) },
			"SgemmSerial": func(c []float32) { SgemmSerial(false, false, tc.m, tc.n, tc.k, 1, a, lda, b, ldb, 0, c, ldc) },
		} {
			c := make([]float32, max(tc.m*ldc, 1))
			for i := range c {
				c[i] = float32(math.NaN()) // overwritten, never read
			}
			run(c)
			for i := 0; i < tc.m; i++ {
				for j := 0; j < tc.n; j++ {
					got, w := float64(c[i*ldc+j]), want[i*tc.n+j]
					if !(math.Abs(got-w) <= 1e-5*math.Sqrt(float64(tc.k))*(1+math.Abs(w))) {
						t.Fatalf("%s %dx%dx%d: C[%d,%d] = %g, want %g", name, tc.m, tc.n, tc.k, i, j, got, w)
					}
				}
				for j := tc.n; j < ldc && i*ldc+j < len(c); j++ {
					if !math.IsNaN(float64(c[i*ldc+j])) {
						t.Fatalf("%s %dx%dx%d: wrote C[%d,%d] past n", name, tc.m, tc.n, tc.k, i, j)
					}
				}
			}
		}
		if pb.Rows() != tc.k || pb.Cols() != tc.n || (tc.k*tc.n > 0 && pb.Bytes() < int64(tc.k*tc.n*4)) {
			t.Errorf("%v: Rows %d Cols %d Bytes %d", tc, pb.Rows(), pb.Cols(), pb.Bytes())
		}
	}
}

func TestPackedBBadInput(t *testing.T) {
	for name, f := range map[string]func(){
		"negative k": func() { NewPackedB(-1, 2, make([]float32, 4), 2) },
		"short b":    func() { NewPackedB(3, 3, make([]float32, 5), 3) },
		"short a": func() {
			NewPackedB(2, 2, make([]float32, 4), 2).MulSerial(3, make([]float32, 5), 2, make([]float32, 6), 2)
		},
		"short c": func() {
			NewPackedB(2, 2, make([]float32, 4), 2).MulSerial(2, make([]float32, 4), 2, make([]float32, 3), 2)
		},
		"negative m": func() { NewPackedB(2, 2, make([]float32, 4), 2).MulSerial(-1, nil, 2, nil, 2) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
