//go:build amd64 && !purego

package compute

// gemvTAVX512 adds alpha * a * b^T to c: c[j] += alpha * sum_p
// a[p]*b[j*ldb+p] for j < n, p < k (n, k >= 1; gemv_amd64.s).
//
//go:noescape
func gemvTAVX512(a, b *float32, ldb, k int, c *float32, n int, alpha float32)

// hasGemv reports whether gemvT has its AVX-512 kernel.
var hasGemv = hasAVX512F()

// gemvT adds alpha * a * b^T to the 1 x n row c, a being a contiguous
// 1 x k row and b an n x k row-major matrix (a fully connected layer at
// batch 1): row by row dot products, which read b once, where the blocked
// product would pack all of b for one useful row of its 12-row tiles. It
// reports false, doing nothing, without the kernel.
func gemvT(k int, alpha float32, a, b []float32, ldb int, c []float32, n int) bool {
	if !hasGemv || n < 1 || k < 1 {
		return false
	}
	_ = a[k-1]
	_ = b[(n-1)*ldb+k-1]
	_ = c[n-1]
	gemvTAVX512(&a[0], &b[0], ldb, k, &c[0], n, alpha)
	return true
}
