package compute

import "fmt"

// PackedA is an m x k float32 matrix, each row optionally multiplied by a
// scale, packed once into the Go GEMM's A strips, to be the left operand of
// many products: a convolution's weights on the im2col path (K x C*KH*KW,
// the fused BatchNorm's scale folded in), whose packing otherwise ran on
// every call (ResNet18's layer4 downsampling convolution: 4.7 MB read and
// rewritten per forward). SgemmPanelsPacked then packs only B. Where the Go
// kernel does not run Sgemm it keeps the scaled matrix and
// SgemmPanelsPacked calls SgemmPanels. It does not alias the matrix it was
// made from.
type PackedA struct {
	m, k  int
	kern  *microKernel
	data  []float32 // strips of kern.mr rows over the whole of k (packA's layout)
	plain []float32 // without the Go kernel: the scaled m x k matrix, ld k
}

// NewPackedA packs the m x k matrix a (leading dimension lda), row i
// multiplied by scale[i] when scale is not nil (the product then equals
// SgemmEpilogue's with that Scale). It panics on inconsistent dimensions,
// as Sgemm does.
func NewPackedA(m, k int, a []float32, lda int, scale []float32) *PackedA {
	if m < 0 || k < 0 {
		panic(fmt.Sprintf("compute: NewPackedA: negative dimension m=%d k=%d", m, k))
	}
	checkMatrix("a", m, k, a, lda)
	if scale != nil && len(scale) < m {
		panic(fmt.Sprintf("compute: NewPackedA: len(scale)=%d < m=%d", len(scale), m))
	}
	p := &PackedA{m: m, k: k, kern: goBackendKernel()}
	if p.kern == nil {
		p.plain = make([]float32, m*k)
		for i := 0; i < m; i++ {
			row, dst := a[i*lda:i*lda+k], p.plain[i*k:(i+1)*k]
			f := float32(1)
			if scale != nil {
				f = scale[i]
			}
			for j, v := range row {
				dst[j] = f * v
			}
		}
		return p
	}
	mr := p.kern.mr
	p.data = make([]float32, (m+mr-1)/mr*mr*k)
	if m > 0 && k > 0 {
		var sc [16]float32
		packA(p.data, mr, false, a, lda, 0, m, 0, k, 1, scale, &sc)
	}
	return p
}

// Rows returns m, the number of rows.
func (p *PackedA) Rows() int { return p.m }

// Cols returns k, the number of columns.
func (p *PackedA) Cols() int { return p.k }

// Bytes returns the memory p holds.
func (p *PackedA) Bytes() int64 { return int64(len(p.data)+len(p.plain)) * 4 }

// matrix returns the scaled m x k matrix (ld k) p holds.
func (p *PackedA) matrix() []float32 {
	if p.plain != nil {
		return p.plain
	}
	mr := p.kern.mr
	a := make([]float32, p.m*p.k)
	for i := 0; i < p.m; i++ {
		strip := p.data[i/mr*mr*p.k:]
		for q := 0; q < p.k; q++ {
			a[i*p.k+q] = strip[q*mr+i%mr]
		}
	}
	return a
}

// SgemmPanelsPacked is SgemmPanels with A = p (m x k): C (m x n, leading
// dimension ldc) = ep applied to A*B, B (k x n) supplied by src,
// overwriting C. ep.Scale must be nil: a row scale is NewPackedA's. The
// products equal SgemmPanels' with the scale in ep bit for bit. It panics
// on inconsistent dimensions or slice lengths.
func SgemmPanelsPacked(p *PackedA, n int, src PanelSource, c []float32, ldc int, ep Epilogue) {
	m, k := p.m, p.k
	if n < 0 {
		panic(fmt.Sprintf("compute: SgemmPanelsPacked: negative dimension n=%d", n))
	}
	if ep.Scale != nil {
		panic("compute: SgemmPanelsPacked: ep.Scale must be nil (the scale is NewPackedA's)")
	}
	checkMatrix("c", m, n, c, ldc)
	checkEpilogue(m, n, ep)
	if m == 0 || n == 0 {
		return
	}
	kern := goBackendKernel()
	if p.plain != nil || kern != p.kern || k == 0 || m*n*k < 512 {
		SgemmPanels(m, n, k, p.matrix(), max(k, 1), src, c, ldc, ep)
		return
	}
	pk := pkA{data: p.data, k: k}
	workers := gemmWorkers(m, n, k)
	switch {
	case workers == 1:
		gemmBlock(kern, false, false, 0, m, 0, n, k, 1, nil, 0, pk, nil, 0, src, c, ldc, &ep)
	case splitOverK(m, n, k, workers):
		scaleC(m, n, 0, c, ldc)
		t := newGemmTask(false, false, m, n, k, 1, nil, 0, nil, nil, 0, src, c, ldc, nil)
		t.kern, t.pk = kern, pk
		t.runOverK(workers, kc)
		applyEpilogue(0, m, n, c, ldc, &ep, false)
	default:
		t := newGemmTask(false, false, m, n, k, 1, nil, 0, nil, nil, 0, src, c, ldc, &ep)
		t.kern, t.pk = kern, pk
		t.runOverC(workers, kern.mr, kern.nr)
	}
}

// pkA is a PackedA's strips handed to gemmBlock; off is the column of A
// at which the product's k starts (a split-k worker's range).
type pkA struct {
	data   []float32
	k, off int
}

// strip returns the packed kb columns from pc (relative to off) of the
// strip of mr rows starting at row (a multiple of mr).
func (pk pkA) strip(row, mr, pc, kb int) []float32 {
	o := row/mr*mr*pk.k + (pk.off+pc)*mr
	return pk.data[o : o+kb*mr]
}
