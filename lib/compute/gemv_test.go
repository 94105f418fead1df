package compute

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// TestSgemmOneRowTransB checks the 1-row, B-transposed products (a fully
// connected layer at batch 1, gemvT where the CPU has it) against a
// float64 reference: row counts around the 4-row step, k around the
// 16-lane vector (tails), a padded ldb, alpha and beta.
func TestSgemmOneRowTransB(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, tc := range []struct {
		n, k, pad   int
		alpha, beta float32
		transA      bool
	}{
		{1, 1, 0, 1, 0, false}, {3, 15, 0, 1, 0, false}, {4, 16, 0, 1, 0, false}, {5, 17, 2, 1, 0, false},
		{7, 33, 1, 0.5, 0, false}, {8, 512, 0, 1, 1, false}, {1000, 512, 0, 1, 0, false},
		{9, 100, 3, -2, 0.5, true}, {130, 31, 0, 1, 0, false},
	} {
		t.Run(fmt.Sprintf("n%d-k%d-pad%d", tc.n, tc.k, tc.pad), func(t *testing.T) {
			ldb := tc.k + tc.pad
			a := make([]float32, tc.k)
			b := make([]float32, (tc.n-1)*ldb+tc.k)
			c := make([]float32, tc.n)
			for i := range a {
				a[i] = rng.Float32()*2 - 1
			}
			for i := range b {
				b[i] = rng.Float32()*2 - 1
			}
			for i := range c {
				c[i] = rng.Float32()
			}
			want := make([]float64, tc.n)
			tol := make([]float64, tc.n)
			for j := range want {
				var s, sa float64
				for p := 0; p < tc.k; p++ {
					s += float64(a[p]) * float64(b[j*ldb+p])
					sa += math.Abs(float64(a[p]) * float64(b[j*ldb+p]))
				}
				want[j] = float64(tc.alpha)*s + float64(tc.beta)*float64(c[j])
				tol[j] = 1e-6 * (math.Abs(float64(tc.alpha))*sa + math.Abs(float64(tc.beta*c[j])) + 1)
			}
			lda := tc.k
			if tc.transA {
				lda = 1
			}
			Sgemm(tc.transA, true, 1, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, tc.n)
			for j := range want {
				if d := math.Abs(float64(c[j]) - want[j]); d > tol[j] {
					t.Fatalf("c[%d] = %v, want %v (|diff| %g > %g)", j, c[j], want[j], d, tol[j])
				}
			}
		})
	}
}

// BenchmarkSgemmOneRowTransB is ResNet18's classifier at batch 1
// (1 x 1000 x 512, B transposed).
func BenchmarkSgemmOneRowTransB(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	x, w, y := make([]float32, 512), make([]float32, 1000*512), make([]float32, 1000)
	for i := range w {
		w[i] = rng.Float32()
	}
	b.ReportAllocs()
	for b.Loop() {
		Sgemm(false, true, 1, 1000, 512, 1, x, 512, w, 512, 0, y, 1000)
	}
}
