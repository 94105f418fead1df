package compute

import (
	"errors"
	"testing"
)

// loadedOneDNN returns the loaded oneDNN, skipping the test with the Debian
// package to install when the library is absent.
func loadedOneDNN(t testing.TB) *onednnLib {
	t.Helper()
	lib, err := oneDNN()
	if err != nil {
		if errors.Is(err, errNoOneDNN) {
			t.Skipf("oneDNN absent, install libdnnl2 (apt-get install libdnnl2): %v", err)
		}
		t.Fatal(err)
	}
	return lib
}

// TestSgemmOneDNN runs the Sgemm cases through the oneDNN backend as Sgemm
// would (small products in Go) and through dnnl_sgemm for every size.
func TestSgemmOneDNN(t *testing.T) {
	lib := loadedOneDNN(t)
	t.Logf("onednn %s (%s, %d threads)", lib.version, lib.runtime, lib.threads)
	for _, f := range []struct {
		name string
		gemm gemmFunc
	}{{"backend", lib.sgemm}, {"dnnl_sgemm", lib.raw}} {
		t.Run(f.name, func(t *testing.T) {
			checkSgemmAgainstRef(t, func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
				if m == 0 || n == 0 {
					return
				}
				f.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			})
		})
	}
}

// BenchmarkSgemmOneDNN measures dnnl_sgemm on the benchmark shapes.
func BenchmarkSgemmOneDNN(b *testing.B) { benchSgemm(b, loadedOneDNN(b).raw) }

// BenchmarkSgemmOpenBLAS measures cblas_sgemm on the benchmark shapes.
func BenchmarkSgemmOpenBLAS(b *testing.B) {
	lib, err := openBLAS()
	if err != nil {
		b.Skipf("OpenBLAS absent, install libopenblas0: %v", err)
	}
	benchSgemm(b, lib.sgemm)
}
