package compute

import "fmt"

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major float32
// matrices, with the semantics of cblas_sgemm(CblasRowMajor, ...):
// op(A) is m x k (A is m x k with leading dimension lda, or k x m when
// transA), op(B) is k x n (B is k x n with leading dimension ldb, or n x k
// when transB), and C is m x n with leading dimension ldc. When beta is 0, C
// is overwritten and its previous contents (NaN included) are ignored.
//
// Sgemm panics on dimensions or slice lengths that are inconsistent, as BLAS
// reports an illegal parameter; it is an internal building block whose
// callers check shapes on user input before calling it.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// checkSgemm panics with a message naming the bad parameter.
func checkSgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("compute: Sgemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	check := func(name string, rows, cols int, s []float32, ld int) {
		if ld < max(1, cols) {
			panic(fmt.Sprintf("compute: Sgemm: ld%s=%d < %d columns", name, ld, cols))
		}
		if rows > 0 && cols > 0 && len(s) < (rows-1)*ld+cols {
			panic(fmt.Sprintf("compute: Sgemm: len(%s)=%d too short for %dx%d with ld %d", name, len(s), rows, cols, ld))
		}
	}
	check("a", ar, ac, a, lda)
	check("b", br, bc, b, ldb)
	check("c", m, n, c, ldc)
}

// scaleC applies beta to C (m x n): beta 0 overwrites with zeros.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// sgemmSimple is the straightforward, loop-ordered implementation: correct
// for every case, used for small problems and as the fallback.
func sgemmSimple(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	scaleC(m, n, beta, c, ldc)
	if alpha == 0 || k == 0 {
		return
	}
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		switch {
		case !transB:
			for p := 0; p < k; p++ {
				var av float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				av *= alpha
				if av == 0 {
					continue
				}
				Saxpy(av, b[p*ldb:p*ldb+n], crow)
			}
		default:
			for j := 0; j < n; j++ {
				brow := b[j*ldb : j*ldb+k]
				var s float32
				if transA {
					for p, bv := range brow {
						s += a[p*lda+i] * bv
					}
				} else {
					s = Sdot(a[i*lda:i*lda+k], brow)
				}
				crow[j] += alpha * s
			}
		}
	}
}

// Saxpy computes y += alpha*x over len(x) elements; y must be at least as
// long as x.
func Saxpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		y[i] += alpha * x[i]
		y[i+1] += alpha * x[i+1]
		y[i+2] += alpha * x[i+2]
		y[i+3] += alpha * x[i+3]
	}
	for ; i < len(x); i++ {
		y[i] += alpha * x[i]
	}
}

// Sdot returns the dot product of x and y over len(x) elements; y must be at
// least as long as x.
func Sdot(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}
