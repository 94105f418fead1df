package nn

import "github.com/detlab/detlab/lib/compute"

// cpuGemm is the CPU backend's matrix product for a layer computing in
// precision p (compute.Sgemm's contract). Float32 is compute.Sgemm.
// BFloat16 is compute.SgemmBF16 where the CPU multiplies bfloat16 natively
// (compute.HasBF16): the operands arrive unrounded and are rounded while
// packed. Otherwise, and for Float16 (no AVX512-FP16 kernel here), the
// layer has already rounded the operands (emulated autocast) and the
// product runs in float32. Rounding an already rounded operand again
// changes nothing, so either way the numbers are those of bfloat16
// operands with float32 accumulation.
func cpuGemm(p Precision, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if p == BFloat16 && compute.HasBF16() {
		compute.SgemmBF16(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	compute.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// NativePrecision implements PrecisionBackend: the CPU computes BFloat16
// natively when compute.HasBF16 (AVX512_BF16); Float16 is emulated.
//
// A backend that embeds CPU inherits this method and GemmPrecision: if it
// overrides Conv2d, Conv2dBackward or Gemm with kernels that ignore
// ConvGeom.Precision, it must also override NativePrecision to return false,
// or autocast regions would skip the operand rounding.
func (CPU) NativePrecision(p Precision) bool {
	return p == BFloat16 && compute.HasBF16()
}

// GemmPrecision implements PrecisionBackend: cpuGemm.
func (CPU) GemmPrecision(p Precision, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	cpuGemm(p, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
