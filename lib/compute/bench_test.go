package compute

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"
)

// benchBanner prints the CPU and backend once per benchmark run.
var benchBanner sync.Once

var benchShapes = []struct{ m, n, k int }{
	{64, 3136, 576},  // ResNet18 layer1 3x3 conv, 56x56
	{128, 784, 1152}, // layer2, 28x28
	{512, 49, 4608},  // layer4, 7x7
	{1024, 1024, 1024},
}

func benchSgemm(b *testing.B, f func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bb []float32, ldb int, beta float32, c []float32, ldc int)) {
	benchBanner.Do(func() { fmt.Printf("detlab-cpu: %s\ndetlab-blas: %s\n", CPU(), Backend()) })
	r := rand.New(rand.NewSource(1))
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("m%d_n%d_k%d", s.m, s.n, s.k), func(b *testing.B) {
			a := randSlice(r, s.m*s.k)
			bm := randSlice(r, s.k*s.n)
			c := make([]float32, s.m*s.n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f(false, false, s.m, s.n, s.k, 1, a, s.k, bm, s.n, 0, c, s.n)
			}
			b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemm measures the backend Sgemm selects (see Backend).
func BenchmarkSgemm(b *testing.B) { benchSgemm(b, Sgemm) }

// BenchmarkSgemmGo measures the pure-Go kernel whatever the backend.
func BenchmarkSgemmGo(b *testing.B) { benchSgemm(b, sgemmGo) }
