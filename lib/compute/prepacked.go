package compute

import "fmt"

// SgemmSerial is Sgemm (the same arguments and row-major BLAS semantics)
// computed on the calling goroutine only, for callers that already run many
// independent products at once: a Winograd convolution's 16 or 36 small
// products, one per goroutine, where Sgemm's own split would start more
// workers than there are cores. Where a native library runs Sgemm (OpenBLAS,
// oneDNN) it calls Sgemm. It panics on inconsistent dimensions or slice
// lengths, as Sgemm does.
func SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	kern := goBackendKernel()
	if kern == nil {
		sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if beta == 0 && alpha == 1 && k > 0 && m*n*k >= 512 {
		// Overwrite C in the kernel's store (no clearing pass).
		gemmBlock(kern, transA, transB, 0, m, 0, n, k, 1, a, lda, b, ldb, nil, c, ldc, &Epilogue{})
		return
	}
	scaleC(m, n, beta, c, ldc)
	if alpha == 0 || k == 0 {
		return
	}
	if m*n*k < 512 {
		sgemmSimple(transA, transB, m, n, k, alpha, a, lda, b, ldb, 1, c, ldc)
		return
	}
	gemmBlock(kern, transA, transB, 0, m, 0, n, k, alpha, a, lda, b, ldb, nil, c, ldc, nil)
}

// PackedB is a k x n float32 matrix packed once into the Go GEMM's B panels,
// to be the right operand of many products (a Winograd convolution's
// transformed weights, reused for every image): MulSerial then packs only
// A. Where the Go kernel does not run Sgemm it keeps a plain copy and
// MulSerial calls Sgemm. It does not alias the matrix it was made from.
type PackedB struct {
	k, n  int
	kern  *microKernel
	data  []float32 // panels: for each kc slice, for each nc panel, packB's strips
	plain []float32 // without the Go kernel: the k x n matrix, ld n
}

// NewPackedB packs the k x n matrix b (leading dimension ldb). It panics on
// inconsistent dimensions, as Sgemm does.
func NewPackedB(k, n int, b []float32, ldb int) *PackedB {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("compute: NewPackedB: negative dimension k=%d n=%d", k, n))
	}
	checkMatrix("b", k, n, b, ldb)
	p := &PackedB{k: k, n: n, kern: goBackendKernel()}
	if p.kern == nil {
		p.plain = make([]float32, k*n)
		for i := 0; i < k; i++ {
			copy(p.plain[i*n:(i+1)*n], b[i*ldb:i*ldb+n])
		}
		return p
	}
	nr := p.kern.nr
	np := (n + nr - 1) / nr * nr
	p.data = make([]float32, k*np)
	off := 0
	for pc := 0; pc < k; pc += kc {
		kb := min(kc, k-pc)
		for jc := 0; jc < n; jc += nc {
			nb := min(nc, n-jc)
			packB(p.data[off:], nr, false, b, ldb, pc, kb, jc, nb)
			off += kb * ((nb + nr - 1) / nr * nr)
		}
	}
	return p
}

// Rows returns k, the number of rows.
func (p *PackedB) Rows() int { return p.k }

// Cols returns n, the number of columns.
func (p *PackedB) Cols() int { return p.n }

// Bytes returns the memory p holds.
func (p *PackedB) Bytes() int64 { return int64(len(p.data)+len(p.plain)) * 4 }

// MulSerial computes C = A*B, overwriting C (m x n, leading dimension
// ldc), with A the m x k matrix a (leading dimension lda) and B = p, on the
// calling goroutine (see SgemmSerial). It panics on inconsistent
// dimensions or slice lengths.
func (p *PackedB) MulSerial(m int, a []float32, lda int, c []float32, ldc int) {
	if m < 0 {
		panic(fmt.Sprintf("compute: PackedB.MulSerial: negative m=%d", m))
	}
	checkMatrix("a", m, p.k, a, lda)
	checkMatrix("c", m, p.n, c, ldc)
	if m == 0 || p.n == 0 {
		return
	}
	if p.plain != nil || p.k == 0 || m*p.n*p.k < 512 {
		b := p.plain
		if b == nil {
			b = p.unpack()
		}
		SgemmSerial(false, false, m, p.n, p.k, 1, a, lda, b, max(p.n, 1), 0, c, ldc)
		return
	}
	kern := p.kern
	buf := getPackBuf()
	defer putPackBuf(buf)
	mr, nr := kern.mr, kern.nr
	tile := buf.tile[:mr*nr]
	var ep Epilogue
	for ip := 0; ip < m; ip += mp {
		mpb := min(mp, m-ip)
		off := 0
		for pc := 0; pc < p.k; pc += kc {
			kb := min(kc, p.k-pc)
			packAStrips(buf, mr, a, lda, ip, mpb, pc, kb)
			first, last := pc == 0, pc+kb >= p.k
			for jc := 0; jc < p.n; jc += nc {
				nb := min(nc, p.n-jc)
				panel := p.data[off : off+kb*((nb+nr-1)/nr*nr)]
				off += len(panel)
				for ic := 0; ic < mpb; ic += mc {
					mb := min(mc, mpb-ic)
					for jr := 0; jr < nb; jr += nr {
						bs := panel[jr*kb : jr*kb+kb*nr]
						w := min(nr, nb-jr)
						for ir := ic; ir < ic+mb; ir += mr {
							as := buf.a[ir*kb : ir*kb+kb*mr]
							storeTileEp(kern, kb, as, bs, tile, c, ldc, ip+ir, jc+jr, min(mr, mpb-ir), w, first, last, &ep, &buf.ep)
						}
					}
				}
			}
		}
	}
}

// packAStrips packs rows ip..ip+mpb-1, columns pc..pc+kb-1 of A into
// buf.a as packA does (unscaled). With the vector strip packer, a partial
// last strip (a Winograd GEMM's m is a tile count: 49, 16, 196) is packed
// from a zero-padded copy of its rows in buf.b (MulSerial packs no B)
// instead of packA's element loop, which took 15-20% of a 49-row product.
func packAStrips(buf *packBuf, mr int, a []float32, lda, ip, mpb, pc, kb int) {
	if mr != 12 || kb < 8 || packStrip12 == nil || 12*kb > len(buf.b) {
		packA(buf.a, mr, false, a, lda, ip, mpb, pc, kb, 1, nil, &buf.scale)
		return
	}
	for i := range buf.scale {
		buf.scale[i] = 1
	}
	full := mpb / 12 * 12
	for s := 0; s < full; s += 12 {
		packStrip12(buf.a[s*kb:(s+12)*kb], a[(ip+s)*lda+pc:], lda, kb, &buf.scale)
	}
	if h := mpb - full; h > 0 {
		stage := buf.b[:12*kb]
		for i := 0; i < h; i++ {
			r := (ip + full + i) * lda
			copy(stage[i*kb:(i+1)*kb], a[r+pc:r+pc+kb])
		}
		clear(stage[h*kb:])
		packStrip12(buf.a[full*kb:(full+12)*kb], stage, kb, kb, &buf.scale)
	}
}

// unpack returns the k x n matrix p was packed from (for tiny products).
func (p *PackedB) unpack() []float32 {
	nr := p.kern.nr
	b := make([]float32, p.k*p.n)
	off := 0
	for pc := 0; pc < p.k; pc += kc {
		kb := min(kc, p.k-pc)
		for jc := 0; jc < p.n; jc += nc {
			nb := min(nc, p.n-jc)
			for j := 0; j < nb; j++ {
				s, t := j/nr, j%nr
				for q := 0; q < kb; q++ {
					b[(pc+q)*p.n+jc+j] = p.data[off+s*nr*kb+q*nr+t]
				}
			}
			off += kb * ((nb + nr - 1) / nr * nr)
		}
	}
	return b
}
