package compute

import (
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
)

// EnvBF16 is the environment variable that turns the native bfloat16 GEMM
// off: "emulated" (or "off") makes HasBF16 report false, so SgemmBF16 and
// the layers above it round operands and run the float32 GEMM, as on a CPU
// without AVX512_BF16. Read once, at the first call.
const EnvBF16 = "DETLAB_BF16"

// bf16MicroKernel computes c = alpha*acc + c for one mr x nr tile, where
// acc sums kq products of packed bf16 pairs: the pair (i, q) of A at
// a[i*rs+q*qs] (packABF16's layouts), b holding kq rows of nr pairs
// (packBBF16).
type bf16MicroKernel struct {
	name   string
	mr, nr int
	fn     func(kq int, a, b []uint32, c []float32, ldc int, alpha float32, rs, qs int)
}

// bf16Native is the native kernel, set in init where the CPU runs it.
var bf16Native *bf16MicroKernel

var bf16Enabled = sync.OnceValue(func() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(EnvBF16))) {
	case "emulated", "emulate", "off", "0", "false":
		return false
	}
	return bf16Native != nil
})

// HasBF16 reports whether SgemmBF16 runs natively in bfloat16: the CPU and
// OS support AVX-512 with AVX512_BF16 (VDPBF16PS), the build is amd64
// without the purego tag, and DETLAB_BF16 does not turn it off. Where it is
// false, SgemmBF16 rounds its operands and calls Sgemm.
func HasBF16() bool { return bf16Enabled() }

// BF16Backend names what SgemmBF16 runs, for benchmark printouts: the
// native kernel, or the emulation and why.
func BF16Backend() string {
	switch {
	case bf16Enabled():
		return "native " + bf16Native.name
	case bf16Native != nil:
		return "emulated (" + EnvBF16 + "=" + os.Getenv(EnvBF16) + "): operands rounded to bfloat16, float32 Sgemm"
	}
	return "emulated (no AVX512_BF16): operands rounded to bfloat16, float32 Sgemm"
}

// SgemmBF16 is Sgemm (the same arguments, row-major BLAS semantics) with
// op(A) and op(B) rounded to bfloat16 (round to nearest, ties to even, as
// torch and nn.RoundBF16 do) and the products accumulated in float32: the
// matrix product of torch.autocast's bfloat16 region on float32 data. C,
// alpha and beta stay float32; alpha scales the accumulated product, so the
// result is alpha*(bf16(A) bf16(B)) + beta*C.
//
// A product of two bfloat16 values is exact in float32, so the result
// differs from Sgemm on the rounded operands only by the order of the
// float32 additions. Where HasBF16 is true the operands are converted while
// packed and multiplied by VDPBF16PS, which treats bfloat16 subnormals
// (magnitudes below 1.2e-38) as zero; elsewhere the operands are rounded
// into temporary copies and Sgemm runs.
//
// Like Sgemm it panics on inconsistent dimensions or slice lengths, and it
// may be called from several goroutines at once.
func SgemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if !bf16Enabled() {
		sgemmBF16Emulated(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	sgemmBF16Kernel(bf16Native, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmBF16Emulated rounds op(A) and op(B)'s storage to bfloat16 and calls
// Sgemm.
func sgemmBF16Emulated(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ar, br := m, k
	if transA {
		ar = k
	}
	if transB {
		br = n
	}
	ra := roundedBF16(a, ar, lda)
	rb := roundedBF16(b, br, ldb)
	Sgemm(transA, transB, m, n, k, alpha, ra, lda, rb, ldb, beta, c, ldc)
}

// roundedBF16 returns a copy of the rows x ld matrix s (its last row may be
// short) rounded to bfloat16.
func roundedBF16(s []float32, rows, ld int) []float32 {
	n := min(len(s), rows*ld)
	if rows == 0 {
		n = 0
	}
	r := make([]float32, n)
	for i, v := range s[:n] {
		r[i] = math.Float32frombits(bf16Bits(v) << 16)
	}
	return r
}

// bf16Bits returns the bfloat16 nearest to v (ties to even) as its 16 bits:
// nn.RoundBF16's rounding. NaN stays a (quiet) NaN.
func bf16Bits(v float32) uint32 {
	b := math.Float32bits(v)
	if b&0x7f800000 == 0x7f800000 {
		if b&0x007fffff != 0 {
			b |= 0x00400000
		}
		return b >> 16
	}
	return (b + 0x7fff + (b>>16)&1) >> 16
}

// bf16RoundN, set in init where the CPU has AVX-512F, rounds n values (a
// positive multiple of 16); nil means the Go loop.
var bf16RoundN func(dst, src []float32, n int)

// RoundBF16Slice writes src rounded to bfloat16 (nearest, ties to even) and
// widened back to float32 into dst, which must be at least as long as src
// and may alias it. It gives exactly the bits of nn.RoundBF16 (subnormals
// kept, NaN stays NaN, values beyond bfloat16's range become ±Inf), with
// AVX-512 where the CPU has it: autocast's rounding of activations and
// gradients.
func RoundBF16Slice(dst, src []float32) {
	dst = dst[:len(src)]
	i := 0
	if f := bf16RoundN; f != nil {
		if n := len(src) &^ 15; n > 0 {
			f(dst, src, n)
			i = n
		}
	}
	for ; i < len(src); i++ {
		dst[i] = math.Float32frombits(bf16Bits(src[i]) << 16)
	}
}

// bf16Pair packs two float32 values, consecutive along k, into the uint32
// VDPBF16PS reads: lo in the low half.
func bf16Pair(lo, hi float32) uint32 { return bf16Bits(lo) | bf16Bits(hi)<<16 }

// Block sizes of the bfloat16 GEMM (Goto's scheme as in the float32 one):
// kcBF16 (even, so only the last block of k can be odd) values of k are
// packed per block as kcBF16/2 pairs; mcBF16 and ncBF16 are multiples of
// the kernel's mr and nr. kcBF16 is twice the float32 kc: a bf16 strip of B
// (256 pairs x 32 columns, 32 KB) then fills L1 as the float32 one does, and
// C is read and written half as often per flop. Measured on the Faster
// R-CNN box head's products (1024 x 1024 x 25088 and its gradients): 0.5x
// Sgemm's CPU time at 512, 0.62x at 256.
const (
	kcBF16 = 512
	mcBF16 = 96
	ncBF16 = 512
	mpBF16 = 16 * mcBF16
	// minParallelBF16 is the 2*m*n*k under which the product stays on
	// the calling goroutine.
	minParallelBF16 = 1 << 22
)

// bf16PackBuf holds one goroutine's packed panels.
type bf16PackBuf struct {
	a, b []uint32
	row  []uint32 // one row's pairs, for packStridedPairs
	// f holds one float32 strip of a PanelSource's B (kcBF16 x nr), made
	// on first use.
	f []float32
	// tile is an edge tile's product: here rather than on the stack,
	// where passing it to the kernel's function value would move it to
	// the heap on every call.
	tile [12 * 32]float32
}

// bf16Free keeps released pack buffers (not emptied by the collector, so
// steady-state calls allocate nothing).
var bf16Free struct {
	sync.Mutex
	bufs []*bf16PackBuf
}

func getBF16PackBuf() *bf16PackBuf {
	bf16Free.Lock()
	defer bf16Free.Unlock()
	if n := len(bf16Free.bufs); n > 0 {
		b := bf16Free.bufs[n-1]
		bf16Free.bufs = bf16Free.bufs[:n-1]
		return b
	}
	return &bf16PackBuf{a: make([]uint32, mpBF16*kcBF16/2), b: make([]uint32, kcBF16/2*ncBF16), row: make([]uint32, kcBF16/2)}
}

func putBF16PackBuf(b *bf16PackBuf) {
	bf16Free.Lock()
	defer bf16Free.Unlock()
	if len(bf16Free.bufs) < 16 {
		bf16Free.bufs = append(bf16Free.bufs, b)
	}
}

// scaleBF16C applies beta to C (m x n): beta 0 overwrites with zeros.
func scaleBF16C(m, n int, beta float32, c []float32, ldc int) {
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

// sgemmBF16Kernel is the blocked, packed, parallel bfloat16 GEMM with the
// given micro-kernel; arguments are already checked and m, n > 0.
func sgemmBF16Kernel(kern *bf16MicroKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	scaleBF16C(m, n, beta, c, ldc)
	if alpha == 0 || k == 0 {
		return
	}
	workers, splitK := bf16Plan(m, n, k)
	if workers == 1 {
		gemmBlockBF16(kern, transA, transB, 0, m, 0, n, k, alpha, a, lda, nil, b, ldb, nil, c, ldc, nil)
		return
	}
	if splitK {
		sgemmBF16SplitK(kern, workers, transA, transB, m, n, k, alpha, a, lda, nil, b, ldb, nil, c, ldc)
		return
	}
	gemmParallelBF16(kern, workers, transA, transB, m, n, k, alpha, a, lda, nil, b, ldb, nil, c, ldc, nil)
}

// gemmParallelBF16 runs gemmBlockBF16 on one contiguous range of the larger
// dimension of C per worker, aligned to the micro-tile so that no tile
// straddles two workers, on the worker pool.
func gemmParallelBF16(kern *bf16MicroKernel, workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, pa *packedA, b []float32, ldb int, src PanelSource, c []float32, ldc int, ep *Epilogue) {
	t := newGemmTask(transA, transB, m, n, k, alpha, a, lda, pa, b, ldb, src, c, ldc, ep)
	t.kern16 = kern
	t.runOverC(workers, kern.mr, kern.nr)
}

// bf16Plan returns how many goroutines an m x n x k product runs on
// (GOMAXPROCS at most, one per minParallelBF16 flops) and whether they
// split k rather than C: when k dwarfs m and n (fc6's 1024 x 1024 x 25088),
// splitting C would make every worker pack the whole of one operand.
func bf16Plan(m, n, k int) (workers int, splitK bool) {
	workers = runtime.GOMAXPROCS(0)
	if f := 2 * m * n * k / minParallelBF16; f < workers {
		workers = max(f, 1)
	}
	return workers, workers > 1 && k >= 8*max(m, n) && k >= 2*kcBF16*workers
}

// sgemmBF16SplitK splits a long k (a box head's fc6) over the workers: the
// first accumulates into C, the others into zeroed m x n buffers added into
// C at the end, so every operand is packed once in all. A non-nil src
// supplies B (b unused, transB false).
func sgemmBF16SplitK(kern *bf16MicroKernel, workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, pa *packedA, b []float32, ldb int, src PanelSource, c []float32, ldc int) {
	t := newGemmTask(transA, transB, m, n, k, alpha, a, lda, pa, b, ldb, src, c, ldc, nil)
	t.kern16 = kern
	t.runOverK(workers, kcBF16)
}

// gemmBlockBF16 adds alpha*op(A)*op(B) into rows [i0,i1) and columns
// [j0,j1) of C, serially, in gemmBlock's loop order: each A panel of up to
// mpBF16 rows is packed once per kcBF16 slice of k and reused across every
// ncBF16-wide panel of B. A non-nil pa is op(A) already converted (a and
// transA unused, nothing packed). A non-nil src supplies B (b unused, transB
// false). With an epilogue (alpha must then be 1) it overwrites the block
// instead and applies ep to each tile as it receives its last slice of k
// (storeTileEpBF16).
func gemmBlockBF16(kern *bf16MicroKernel, transA, transB bool, i0, i1, j0, j1, k int, alpha float32, a []float32, lda int, pa *packedA, b []float32, ldb int, src PanelSource, c []float32, ldc int, ep *Epilogue) {
	buf := getBF16PackBuf()
	defer putBF16PackBuf(buf)
	mr, nr := kern.mr, kern.nr
	tile := buf.tile[:mr*nr]
	for ip := i0; ip < i1; ip += mpBF16 {
		mpb := min(mpBF16, i1-ip)
		for pc := 0; pc < k; pc += kcBF16 {
			kb := min(kcBF16, k-pc)
			kq := (kb + 1) / 2
			rs, qs := aLayout(transA, mr, kq)
			if pa != nil {
				rs, qs = pa.ld, 1
			} else {
				packABF16(buf.a, mr, transA, a, lda, ip, mpb, pc, kb)
			}
			first, last := pc == 0, pc+kb >= k
			for jc := j0; jc < j1; jc += ncBF16 {
				nb := min(ncBF16, j1-jc)
				if src != nil {
					packSourceBF16(buf, nr, src, pc, kb, jc, nb)
				} else {
					packBBF16(buf.b, buf.row, nr, transB, b, ldb, pc, kb, jc, nb)
				}
				for ic := 0; ic < mpb; ic += mcBF16 {
					mb := min(mcBF16, mpb-ic)
					for jr := 0; jr < nb; jr += nr {
						bs := buf.b[jr*kq : jr*kq+kq*nr]
						w := min(nr, nb-jr)
						for ir := ic; ir < ic+mb; ir += mr {
							var as []uint32
							if pa != nil {
								o := (ip+ir)*pa.ld + pa.off + pc/2
								as = pa.pairs[o : o+(mr-1)*pa.ld+kq]
							} else {
								as = buf.a[ir*kq : ir*kq+kq*mr]
							}
							h := min(mr, mpb-ir)
							off := (ip+ir)*ldc + jc + jr
							if ep != nil {
								storeTileEpBF16(kern, kq, as, bs, tile, c, ldc, ip+ir, jc+jr, h, w, rs, qs, first, last, ep)
								continue
							}
							if h == mr && w == nr {
								kern.fn(kq, as, bs, c[off:], ldc, alpha, rs, qs)
								continue
							}
							clear(tile)
							kern.fn(kq, as, bs, tile, nr, alpha, rs, qs)
							for i := 0; i < h; i++ {
								row := c[off+i*ldc : off+i*ldc+w]
								for j := range row {
									row[j] += tile[i*nr+j]
								}
							}
						}
					}
				}
			}
		}
	}
}

// Assembly converters, set in init where the CPU has AVX512_BF16; nil means
// the Go loops.
var (
	// bf16RowPairs32 packs kq pairs of rows of a row-major matrix
	// (leading dimension ld), 32 columns wide: packBBF16's full strips.
	bf16RowPairs32 func(dst []uint32, src []float32, ld, kq int)
	// bf16CvtPairsN converts 2*nq consecutive values into nq pairs; nq is
	// a positive multiple of 16.
	bf16CvtPairsN func(dst []uint32, src []float32, nq int)
	// bf16ColPairs12 packs kq pairs of rows, 12 columns wide, into
	// dst[q*12+i]: packABF16's transposed strips.
	bf16ColPairs12 func(dst []uint32, src []float32, ld, kq int)
)

// cvtPairs writes dst[q] = bf16Pair(src[2q], src[2q+1]) for the values of
// src, an odd last value paired with zero.
func cvtPairs(dst []uint32, src []float32) {
	q0 := 0
	if f := bf16CvtPairsN; f != nil {
		if nq := len(src) / 32 * 16; nq > 0 {
			f(dst, src, nq)
			q0 = nq
		}
	}
	ke := len(src) &^ 1
	for p := 2 * q0; p < ke; p += 2 {
		dst[p/2] = bf16Pair(src[p], src[p+1])
	}
	if ke < len(src) {
		dst[ke/2] = bf16Bits(src[ke])
	}
}

// packStridedPairs packs the first rows rows of src (row r at src[r*ld:], kb
// values each, contiguous along k) into dst[q*stride+r] as bfloat16 pairs,
// and zeroes the columns r in [rows, stride) of every q. tmp holds at least
// (kb+1)/2 values.
func packStridedPairs(dst, tmp []uint32, stride, rows int, src []float32, ld, kb int) {
	kq := (kb + 1) / 2
	t := tmp[:kq]
	for r := 0; r < stride; r++ {
		if r >= rows {
			for q := 0; q < kq; q++ {
				dst[q*stride+r] = 0
			}
			continue
		}
		cvtPairs(t, src[r*ld:r*ld+kb])
		for q, v := range t {
			dst[q*stride+r] = v
		}
	}
}

// aLayout returns the strides (rs, qs) of packABF16's layout: the pair
// (i, q) of a strip is at i*rs+q*qs.
func aLayout(transA bool, mr, kq int) (rs, qs int) {
	if transA {
		return 1, mr
	}
	return kq, 1
}

// packABF16 packs op(A)[i0:i0+mb, p0:p0+kb] as bfloat16 pairs in strips of
// mr rows: strip s holds the pair (A[r][p0+2q], A[r][p0+2q+1]) of row
// r = s*mr+i at i*rs+q*qs (aLayout: each row's kq = (kb+1)/2 pairs
// contiguous, converted in place, or for a transposed A, whose rows are
// strided, the mr rows' pairs of each q together), zero for rows past mb
// and for the k past an odd kb.
func packABF16(dst []uint32, mr int, transA bool, a []float32, lda, i0, mb, p0, kb int) {
	kq := (kb + 1) / 2
	for s := 0; s*mr < mb; s++ {
		strip := dst[s*mr*kq : (s+1)*mr*kq]
		h := min(mr, mb-s*mr)
		r0 := i0 + s*mr
		if !transA {
			clear(strip[h*kq:])
			for i := 0; i < h; i++ {
				off := (r0+i)*lda + p0
				cvtPairs(strip[i*kq:(i+1)*kq], a[off:off+kb])
			}
			continue
		}
		q0 := 0
		if f := bf16ColPairs12; f != nil && mr == 12 && h == 12 && kb >= 2 {
			q0 = kb / 2
			f(strip, a[p0*lda+r0:], lda, q0)
		}
		pairRows(strip, mr, h, a, lda, p0, r0, kb, q0)
	}
}

// packBBF16 packs op(B)[p0:p0+kb, j0:j0+nb] as bfloat16 pairs in strips of
// nr columns: strip s holds, for each pair q, the nr values (B[p0+2q][c],
// B[p0+2q+1][c]) of columns s*nr.. (zero padded like packABF16).
func packBBF16(dst, tmp []uint32, nr int, transB bool, b []float32, ldb, p0, kb, j0, nb int) {
	kq := (kb + 1) / 2
	for s := 0; s*nr < nb; s++ {
		strip := dst[s*nr*kq : (s+1)*nr*kq]
		w := min(nr, nb-s*nr)
		c0 := j0 + s*nr
		if transB {
			packStridedPairs(strip, tmp, nr, w, b[c0*ldb+p0:], ldb, kb)
			continue
		}
		q0 := 0
		if f := bf16RowPairs32; f != nil && nr == 32 && w == 32 && kb >= 2 {
			q0 = kb / 2
			f(strip, b[p0*ldb+c0:], ldb, q0)
		}
		pairRows(strip, nr, w, b, ldb, p0, c0, kb, q0)
	}
}

// pairRows writes, for each pair q0 <= q < (kb+1)/2, the w values of rows
// p0+2q and p0+2q+1 of x (leading dimension ld, from column c0) as
// bfloat16 pairs into strip[q*stride:], the second half zero past row kb
// and the pairs past w zero up to stride: the interleaved panel layout
// both packers share.
func pairRows(strip []uint32, stride, w int, x []float32, ld, p0, c0, kb, q0 int) {
	for q := q0; q < (kb+1)/2; q++ {
		p := p0 + 2*q
		lo := x[p*ld+c0 : p*ld+c0+w]
		d := strip[q*stride : q*stride+stride]
		if 2*q+1 < kb {
			hi := x[(p+1)*ld+c0 : (p+1)*ld+c0+w]
			for j, v := range lo {
				d[j] = bf16Pair(v, hi[j])
			}
		} else {
			for j, v := range lo {
				d[j] = bf16Bits(v)
			}
		}
		clear(d[w:])
	}
}
