package compute

import "fmt"

// SgemmBF16Epilogue is SgemmEpilogue with op(A) and op(B) rounded to
// bfloat16 as SgemmBF16 rounds them, the products accumulated in float32:
//
//	C[i,j] = relu(Scale[i]*(bf16(op(A))*bf16(op(B)))[i,j] + Shift[i] + Residual[i,j])
//
// (each part as ep provides it), overwriting C. The epilogue runs in
// float32 on the float32 accumulated product, as torch's autocast runs a
// batch norm after a bfloat16 convolution: unlike SgemmEpilogue, Scale is
// not folded into the packed A (that would round Scale[i]*A[i,p] to
// bfloat16 instead of A[i,p]). Where HasBF16 is true the epilogue is applied
// to each tile of C as it receives its last slice of k, while the tile is
// still in the L1 cache; elsewhere the emulated product runs and the
// epilogue follows as a second pass. The two differ only in the order of
// the float32 additions.
//
// It panics on inconsistent dimensions or slice lengths, as Sgemm does.
func SgemmBF16Epilogue(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	checkEpilogue(m, n, ep)
	if m == 0 || n == 0 {
		return
	}
	if !bf16Enabled() {
		sgemmBF16Emulated(transA, transB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
		applyEpilogue(0, m, n, c, ldc, &ep, true)
		return
	}
	sgemmBF16KernelEp(bf16Native, transA, transB, m, n, k, a, lda, nil, b, ldb, nil, c, ldc, &ep)
}

// SgemmBF16Panels is SgemmBF16Epilogue with op(A) = A (m x k, leading
// dimension lda) and B (k x n) supplied by src, as SgemmPanels takes it: a
// convolution's patch matrix is generated into float32 strips of one
// packed panel at a time and converted to bfloat16 pairs there, so it never
// exists whole. Where HasBF16 is false, B is first written out whole,
// rounded, and the emulated product runs.
func SgemmBF16Panels(m, n, k int, a []float32, lda int, src PanelSource, c []float32, ldc int, ep Epilogue) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("compute: SgemmBF16Panels: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	checkMatrix("a", m, k, a, lda)
	checkMatrix("c", m, n, c, ldc)
	checkEpilogue(m, n, ep)
	if m == 0 || n == 0 {
		return
	}
	if !bf16Enabled() {
		b := materialize(src, k, n)
		defer b.release()
		sgemmBF16Emulated(false, false, m, n, k, 1, a, lda, b.b, n, 0, c, ldc)
		applyEpilogue(0, m, n, c, ldc, &ep, true)
		return
	}
	sgemmBF16KernelEp(bf16Native, false, false, m, n, k, a, lda, nil, nil, 0, src, c, ldc, &ep)
}

// sgemmBF16KernelEp is SgemmBF16Epilogue on a bfloat16 micro-kernel: C is
// overwritten tile by tile (no clearing pass) and ep applied to each
// finished tile. A non-nil pa is op(A) already converted (a unused); a
// non-nil src supplies B (b unused, transB false).
func sgemmBF16KernelEp(kern *bf16MicroKernel, transA, transB bool, m, n, k int, a []float32, lda int, pa *packedA, b []float32, ldb int, src PanelSource, c []float32, ldc int, ep *Epilogue) {
	if k == 0 {
		scaleBF16C(m, n, 0, c, ldc)
		applyEpilogue(0, m, n, c, ldc, ep, true)
		return
	}
	workers, splitK := bf16Plan(m, n, k)
	switch {
	case workers == 1:
		gemmBlockBF16(kern, transA, transB, 0, m, 0, n, k, 1, a, lda, pa, b, ldb, src, c, ldc, ep)
	case splitK:
		scaleBF16C(m, n, 0, c, ldc)
		sgemmBF16SplitK(kern, workers, transA, transB, m, n, k, 1, a, lda, pa, b, ldb, src, c, ldc)
		applyEpilogue(0, m, n, c, ldc, ep, true)
	default:
		gemmParallelBF16(kern, workers, transA, transB, m, n, k, 1, a, lda, pa, b, ldb, src, c, ldc, ep)
	}
}

// packSourceBF16 packs src's B[p0:p0+kb, j0:j0+nb] into buf.b in
// packBBF16's layout: each strip of nr columns is generated as float32,
// srcChunkBF16 rows at a time (in buf.f, so they are converted while still
// in L1), and converted to pairs of rows, which is packBBF16's conversion
// of a row-major matrix with leading dimension nr.
func packSourceBF16(buf *bf16PackBuf, nr int, src PanelSource, p0, kb, j0, nb int) {
	kq := (kb + 1) / 2
	if len(buf.f) < srcChunkBF16*nr {
		buf.f = make([]float32, srcChunkBF16*nr)
	}
	for s := 0; s*nr < nb; s++ {
		w := min(nr, nb-s*nr)
		strip := buf.b[s*nr*kq : (s+1)*nr*kq]
		for r0 := 0; r0 < kb; r0 += srcChunkBF16 {
			rb := min(srcChunkBF16, kb-r0)
			f := buf.f[:rb*nr]
			src.PackPanel(f, nr, p0+r0, rb, j0+s*nr, w)
			d := strip[r0/2*nr:]
			q0, rq := 0, (rb+1)/2
			if fn := bf16RowPairs32; fn != nil && nr == 32 && rb >= 2 {
				q0 = rb / 2
				fn(d, f, nr, q0)
			}
			for q := q0; q < rq; q++ {
				lo := f[2*q*nr : 2*q*nr+nr]
				dq := d[q*nr : q*nr+nr]
				if 2*q+1 < rb {
					hi := f[(2*q+1)*nr : (2*q+1)*nr+nr]
					for j, v := range lo {
						dq[j] = bf16Pair(v, hi[j])
					}
					continue
				}
				for j, v := range lo {
					dq[j] = bf16Bits(v)
				}
			}
		}
	}
}

// srcChunkBF16 is how many rows of a PanelSource's strip packSourceBF16
// generates at once (even, so only the last chunk of a block can be odd):
// 128 rows of 32 float32 values are 16 KB, which stay in L1 for the
// conversion.
const srcChunkBF16 = 128

// storeTileEpBF16 computes the h x w tile of C at (row, col) for one slice
// of k (kq pairs): overwritten on the first slice, accumulated after, and
// finished with ep on the last. Full tiles are cleared and accumulated in
// place by the kernel; edge tiles go through tile.
func storeTileEpBF16(kern *bf16MicroKernel, kq int, as, bs []uint32, tile, c []float32, ldc, row, col, h, w, rs, qs int, first, last bool, ep *Epilogue) {
	mr, nr := kern.mr, kern.nr
	off := row*ldc + col
	if h == mr && w == nr {
		if first {
			for i := 0; i < mr; i++ {
				clear(c[off+i*ldc : off+i*ldc+nr])
			}
		}
		kern.fn(kq, as, bs, c[off:], ldc, 1, rs, qs)
	} else {
		clear(tile)
		kern.fn(kq, as, bs, tile, nr, 1, rs, qs)
		for i := 0; i < h; i++ {
			dst := c[off+i*ldc : off+i*ldc+w]
			t := tile[i*nr : i*nr+w]
			if first {
				copy(dst, t)
				continue
			}
			for j, v := range t {
				dst[j] += v
			}
		}
	}
	if last {
		epilogueTile(c, ldc, row, col, h, w, ep)
	}
}

// bf16EpRows32N, set in init where the CPU has AVX-512F, is epilogueTile
// for tiles 32 columns wide and at most 16 rows high; nil means the Go
// loop.
var bf16EpRows32N func(c []float32, ldc, row, col, h int, ep *Epilogue)

// epilogueTile applies all of ep (Scale included) to the h x w tile of C
// at (row, col), with applyEpilogue's arithmetic.
func epilogueTile(c []float32, ldc, row, col, h, w int, ep *Epilogue) {
	if f := bf16EpRows32N; f != nil && w == 32 && h <= 16 {
		f(c, ldc, row, col, h, ep)
		return
	}
	for i := row; i < row+h; i++ {
		dst := c[i*ldc+col : i*ldc+col+w]
		s, t := float32(1), float32(0)
		if ep.Scale != nil {
			s = ep.Scale[i]
		}
		if ep.Shift != nil {
			t = ep.Shift[i]
		}
		var res []float32
		if ep.Residual != nil {
			ro := i*ep.LdResidual + col
			res = ep.Residual[ro : ro+w]
		}
		for j, v := range dst {
			v = v*s + t
			if res != nil {
				v += res[j]
			}
			if ep.ReLU && !(v > 0) && v == v {
				v = 0
			}
			dst[j] = v
		}
	}
}
