package nn

import "github.com/detlab/detlab/lib/compute"

// cpuGemm is the CPU backend's matrix product for a layer computing in
// precision p (compute.Sgemm's contract). Float32 is compute.Sgemm; the
// reduced precisions arrive here with operands already rounded by the layer
// (emulated autocast) and so also run in float32.
func cpuGemm(p Precision, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	_ = p
	compute.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
