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
	checkMatrix("a", ar, ac, a, lda)
	checkMatrix("b", br, bc, b, ldb)
	checkMatrix("c", m, n, c, ldc)
}

// checkMatrix panics when s cannot hold a rows x cols matrix with leading
// dimension ld.
func checkMatrix(name string, rows, cols int, s []float32, ld int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("compute: Sgemm: ld%s=%d < %d columns", name, ld, cols))
	}
	if rows > 0 && cols > 0 && len(s) < (rows-1)*ld+cols {
		panic(fmt.Sprintf("compute: Sgemm: len(%s)=%d too short for %dx%d with ld %d", name, len(s), rows, cols, ld))
	}
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

// Epilogue is per-row work that SgemmEpilogue fuses into a product, the
// shape of a convolution followed by a per-channel affine map (an eval or
// frozen BatchNorm, a bias), a residual sum and a ReLU: rows of C are
// output channels. Every field is optional; the zero Epilogue is a plain
// product.
type Epilogue struct {
	// Scale multiplies row i of op(A)*op(B) by Scale[i] (len >= m; nil: 1).
	Scale []float32
	// Shift adds Shift[i] to row i (len >= m; nil: 0).
	Shift []float32
	// Residual is an m x n matrix (leading dimension LdResidual) added
	// after Shift; nil: none.
	Residual   []float32
	LdResidual int
	// ReLU replaces the result by max(v, 0); NaN stays NaN.
	ReLU bool
}

// SgemmEpilogue computes
//
//	C[i,j] = relu(Scale[i]*(op(A)*op(B))[i,j] + Shift[i] + Residual[i,j])
//
// (each part as ep provides it), overwriting C (m x n, leading dimension
// ldc), in one pass over C where the Go implementation runs: the scale is
// folded into the packed A and the rest is applied to each tile of C while
// it is still in registers or the L1 cache. With other backends (OpenBLAS,
// oneDNN) the product runs there and the epilogue follows as a second pass.
// Rounding differs from the unfused sequence by the order of two float32
// operations per element.
//
// It panics on inconsistent dimensions or slice lengths, as Sgemm does.
func SgemmEpilogue(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	checkEpilogue(m, n, ep)
	if m == 0 || n == 0 {
		return
	}
	if kern := goBackendKernel(); kern != nil {
		sgemmKernelEp(kern, transA, transB, m, n, k, a, lda, b, ldb, nil, c, ldc, &ep)
		return
	}
	sgemm(transA, transB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
	applyEpilogue(0, m, n, c, ldc, &ep, true)
}

// checkEpilogue panics on epilogue slices too short for an m x n result.
func checkEpilogue(m, n int, ep Epilogue) {
	if ep.Scale != nil && len(ep.Scale) < m {
		panic(fmt.Sprintf("compute: SgemmEpilogue: len(Scale)=%d < m=%d", len(ep.Scale), m))
	}
	if ep.Shift != nil && len(ep.Shift) < m {
		panic(fmt.Sprintf("compute: SgemmEpilogue: len(Shift)=%d < m=%d", len(ep.Shift), m))
	}
	if ep.Residual != nil && m > 0 && n > 0 {
		if ep.LdResidual < n {
			panic(fmt.Sprintf("compute: SgemmEpilogue: LdResidual=%d < n=%d", ep.LdResidual, n))
		}
		if len(ep.Residual) < (m-1)*ep.LdResidual+n {
			panic(fmt.Sprintf("compute: SgemmEpilogue: len(Residual)=%d too short for %dx%d with ld %d", len(ep.Residual), m, n, ep.LdResidual))
		}
	}
}

// applyEpilogue applies ep to rows [i0, i1) of C (n columns) in place;
// scale says whether ep.Scale still has to be applied (it was not folded
// into the product).
func applyEpilogue(i0, i1, n int, c []float32, ldc int, ep *Epilogue, scale bool) {
	for i := i0; i < i1; i++ {
		row := c[i*ldc : i*ldc+n]
		s, t := float32(1), float32(0)
		if scale && ep.Scale != nil {
			s = ep.Scale[i]
		}
		if ep.Shift != nil {
			t = ep.Shift[i]
		}
		var res []float32
		if ep.Residual != nil {
			res = ep.Residual[i*ep.LdResidual : i*ep.LdResidual+n]
		}
		for j, v := range row {
			v = v*s + t
			if res != nil {
				v += res[j]
			}
			if ep.ReLU && !(v > 0) && v == v {
				v = 0
			}
			row[j] = v
		}
	}
}

// PanelSource supplies the B operand of SgemmPanels without it existing as
// a matrix: a convolution's patch matrix (im2col) generated straight into
// the GEMM's packed panels, which saves writing and re-reading it.
type PanelSource interface {
	// PackPanel writes B[p0:p0+kb, j0:j0+nb] into dst as strips of nr
	// columns: strip s, at dst[s*nr*kb:], holds for each p in order the nr
	// values B[p0+p, j0+s*nr : j0+s*nr+nr], zero past column j0+nb. With
	// nr = nb this is the row-major kb x nb block. Calls for different
	// panels may run concurrently.
	PackPanel(dst []float32, nr, p0, kb, j0, nb int)
}

// SgemmPanels is SgemmEpilogue with op(A) = A (m x k, leading dimension
// lda) and B (k x n) supplied by src: C = ep applied to A*B, overwriting C.
// Where a native library runs the product, B is first written out whole.
func SgemmPanels(m, n, k int, a []float32, lda int, src PanelSource, c []float32, ldc int, ep Epilogue) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("compute: SgemmPanels: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	checkMatrix("a", m, k, a, lda)
	checkMatrix("c", m, n, c, ldc)
	checkEpilogue(m, n, ep)
	if m == 0 || n == 0 {
		return
	}
	if kern := goBackendKernel(); kern != nil {
		sgemmKernelEp(kern, false, false, m, n, k, a, lda, nil, 0, src, c, ldc, &ep)
		return
	}
	b := materialize(src, k, n)
	defer b.release()
	sgemm(false, false, m, n, k, 1, a, lda, b.b, n, 0, c, ldc)
	applyEpilogue(0, m, n, c, ldc, &ep, true)
}
