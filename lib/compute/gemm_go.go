package compute

import (
	"math"
	"reflect"
	"runtime"
	"sync"

	"github.com/detlab/detlab/lib/internal/freelist"
)

// Block sizes of the Go Sgemm (Goto's scheme): a kc x nc panel of op(B)
// and an mc x kc block of op(A) are packed into contiguous strips, and an
// mr x nr micro-kernel accumulates one tile of C in registers. mc and nc
// are multiples of every kernel's mr and nr.
const (
	kc = 256
	mc = 96
	nc = 512
	// mp is the height of the A panel packed once and reused across all
	// column panels (a multiple of mc).
	mp = 16 * mc
)

// microKernel adds the product of a packed mr x kb strip of A and a packed
// kb x nr strip of B into a full mr x nr tile of c (leading dimension ldc).
type microKernel struct {
	name   string
	mr, nr int
	fn     func(kb int, a, b, c []float32, ldc int)
	// fnEp, when set, is the same product with a fused store: it
	// overwrites the tile or adds into it (ep.load), then adds the per-row
	// shift and the residual tile and clamps below at ep.floor. Kernels
	// without one get the epilogue from a Go loop over an edge-tile buffer.
	fnEp func(kb int, a, b, c []float32, ldc int, ep *kernEp)
	// storeEdge, when set, stores an h x w edge tile computed into a
	// buffer (rows nr apart) into c with fnEp's epilogue and arithmetic,
	// instead of the Go loop.
	storeEdge func(h, w int, tile, c []float32, ldc int, ep *kernEp)
	// part, when set, returns a kernel that computes at least the first
	// h rows and w columns of fn's tile, with the same bits: edge tiles
	// then cost less than a full one.
	part func(h, w int) func(kb int, a, b, c []float32, ldc int)
}

// edgeFn returns the function that computes an h x w edge tile into a
// cleared buffer.
func (k *microKernel) edgeFn(h, w int) func(kb int, a, b, c []float32, ldc int) {
	if k.part != nil {
		return k.part(h, w)
	}
	return k.fn
}

// kernEp is what a fused-store kernel reads after its loop (the assembly
// relies on this layout: offsets 0, 8, 16, 24, 32).
type kernEp struct {
	load  uintptr  // 0: overwrite the tile, 1: add into it
	shift *float32 // mr values, one per row
	res   *float32 // residual tile, rows ldr bytes apart
	ldr   uintptr  // residual row stride in bytes (0 repeats one row)
	floor float32  // results are max(floor, v): 0 for ReLU, -Inf otherwise
}

// packStrip12, when the CPU has one (set in init on amd64 with AVX-512),
// packs a full 12-row strip of row-major A for kb >= 8 (see packA).
var packStrip12 func(dst, a []float32, lda, kb int, scale *[16]float32)

// packStripBT32, when the CPU has one, packs a full 32-column strip of a
// transposed B for kb >= 8 (see packB).
var packStripBT32 func(dst, b []float32, ldb, kb int)

// zeroTile backs the shift and residual of fused stores that add nothing.
var zeroTile [maxTile]float32

// negInf is the floor of a store without ReLU.
var negInf = float32(math.Inf(-1))

// goBackendKernel returns the micro-kernel Sgemm runs when the chosen
// backend is the Go implementation, nil when it is a native library.
var goBackendKernel = sync.OnceValue(func() *microKernel {
	p := reflect.ValueOf(chosen().gemm).Pointer()
	switch p {
	case reflect.ValueOf(sgemmGo).Pointer():
		return bestKernel()
	case reflect.ValueOf(sgemmPortable).Pointer():
		return goKernel
	}
	return nil
})

// goKernel is the portable 4x4 kernel; asmKernel, when the CPU allows, an
// assembly one (set in init on amd64 with AVX2 and FMA).
var (
	goKernel  = &microKernel{name: "portable kernel 4x4", mr: 4, nr: 4, fn: kernel4x4}
	asmKernel *microKernel
	// asmKernels lists every assembly kernel this CPU can run (for tests).
	asmKernels []*microKernel
)

// bestKernel is the kernel sgemmGo uses.
func bestKernel() *microKernel {
	if asmKernel != nil {
		return asmKernel
	}
	return goKernel
}

// maxTile bounds mr*nr over all kernels (for the edge-tile buffer).
const maxTile = 12 * 32

// packBuf holds one goroutine's packed panels (about 2 MB).
type packBuf struct {
	a []float32
	b []float32
	// ep and scale are the fused store's arguments and a strip's row
	// multipliers: they live here, not on the stack, because passing their
	// address through a function value would move them to the heap on
	// every call.
	ep    kernEp
	scale [16]float32
	tile  [maxTile]float32 // edge tiles
}

// packFree keeps released buffers. Unlike a sync.Pool it is not emptied by
// the garbage collector, so steady-state calls allocate nothing; it holds at
// most maxFree buffers.
var packFree struct {
	sync.Mutex
	bufs []*packBuf
}

const maxFree = 16

func getPackBuf() *packBuf {
	packFree.Lock()
	defer packFree.Unlock()
	if n := len(packFree.bufs); n > 0 {
		b := packFree.bufs[n-1]
		packFree.bufs = packFree.bufs[:n-1]
		return b
	}
	return &packBuf{a: make([]float32, mp*kc), b: make([]float32, kc*nc)}
}

func putPackBuf(b *packBuf) {
	packFree.Lock()
	defer packFree.Unlock()
	if len(packFree.bufs) < maxFree {
		packFree.bufs = append(packFree.bufs, b)
	}
}

// minParallelFlops is the problem size (2*m*n*k) under which Sgemm stays on
// the calling goroutine.
const minParallelFlops = 1 << 21

// sgemmGo is the blocked, packed, parallel pure-Go Sgemm.
func sgemmGo(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmKernel(bestKernel(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmKernel is sgemmGo with a given micro-kernel.
func sgemmKernel(kern *microKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	scaleC(m, n, beta, c, ldc)
	if alpha == 0 || k == 0 {
		return
	}
	if m*n*k < 512 {
		sgemmSimple(transA, transB, m, n, k, alpha, a, lda, b, ldb, 1, c, ldc)
		return
	}
	if m == 1 && transB && (!transA || lda == 1) && gemvT(k, alpha, a, b, ldb, c, n) {
		return
	}
	workers := gemmWorkers(m, n, k)
	if workers == 1 {
		gemmBlock(kern, transA, transB, 0, m, 0, n, k, alpha, a, lda, b, ldb, nil, c, ldc, nil)
		return
	}
	if splitOverK(m, n, k, workers) {
		sgemmSplitK(kern, workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, nil, c, ldc)
		return
	}
	gemmParallel(kern, workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, nil, c, ldc, nil)
}

// gemmWorkers is the number of goroutines a product of this size uses.
func gemmWorkers(m, n, k int) int {
	workers := runtime.GOMAXPROCS(0)
	if f := 2 * m * n * k / minParallelFlops; f < workers {
		workers = max(f, 1)
	}
	return workers
}

// splitOverK reports whether a product runs as sgemmSplitK rather than
// gemmParallel: only for k at least 16 times m and n. Between 8 and 16
// times, splitting C measured as fast or faster (ResNet18's layer3
// convolution, 256 x 196 x 2304: 0.93 ms split by rows, 1.28 ms over k,
// whose private partial sums, serial reduction and unfused epilogue cost
// more than packing B twice; 512 x 1024 x 12544 and 1024 x 49 x 9216
// within noise).
func splitOverK(m, n, k, workers int) bool {
	return k >= 16*max(m, n) && k >= 2*kc*workers
}

// sgemmKernelEp is SgemmEpilogue on the Go implementation: C is
// overwritten (no clearing pass), ep.Scale is folded into the packed A and
// the rest of ep is applied by the micro-kernel's store of each finished
// tile. A non-nil src supplies B (b is then unused; transB false).
func sgemmKernelEp(kern *microKernel, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, src PanelSource, c []float32, ldc int, ep *Epilogue) {
	workers := gemmWorkers(m, n, k)
	switch {
	case k == 0 || m*n*k < 512:
		if src != nil {
			mb := materialize(src, k, n)
			defer mb.release()
			b, ldb = mb.b, n
		}
		scaleC(m, n, 0, c, ldc)
		sgemmSimple(transA, transB, m, n, k, 1, a, lda, b, ldb, 1, c, ldc)
		applyEpilogue(0, m, n, c, ldc, ep, true)
	case workers == 1:
		gemmBlock(kern, transA, transB, 0, m, 0, n, k, 1, a, lda, b, ldb, src, c, ldc, ep)
	case splitOverK(m, n, k, workers):
		scaleC(m, n, 0, c, ldc)
		sgemmSplitK(kern, workers, transA, transB, m, n, k, 1, a, lda, b, ldb, src, c, ldc)
		applyEpilogue(0, m, n, c, ldc, ep, true)
	default:
		gemmParallel(kern, workers, transA, transB, m, n, k, 1, a, lda, b, ldb, src, c, ldc, ep)
	}
}

// matrixBuf is a materialised B operand (see materialize).
type matrixBuf struct{ b []float32 }

// matrixBufs keeps materialize's buffers between calls: a native library's
// convolutions (OpenBLAS, the default on CPUs without AVX-512) take their
// whole patch matrix this way, about 38 MiB a Faster R-CNN training step at
// 128x128, which came from the heap every call. A buffer keeps the
// largest size it was asked for.
var matrixBufs freelist.List[matrixBuf]

// materialize writes src's k x n matrix, row-major, into a buffer from
// matrixBufs (give it back with release): a panel whose single strip is n
// columns wide has exactly that layout. The rows are packed kc at a time,
// the panel height the Go GEMM asks of a source, so that the source's
// per-row tables stay in its fixed-size buffers.
func materialize(src PanelSource, k, n int) *matrixBuf {
	m := matrixBufs.Get()
	if cap(m.b) < k*n {
		m.b = make([]float32, k*n)
	}
	m.b = m.b[:k*n]
	if n > 0 {
		for p0 := 0; p0 < k; p0 += kc {
			kb := min(kc, k-p0)
			src.PackPanel(m.b[p0*n:(p0+kb)*n], n, p0, kb, 0, n)
		}
	}
	return m
}

// release gives m back to matrixBufs.
func (m *matrixBuf) release() { matrixBufs.Put(m) }

// srcAt returns src with its rows shifted by p0 (nil stays nil).
func srcAt(src PanelSource, p0 int) PanelSource {
	if src == nil || p0 == 0 {
		return src
	}
	return shiftedSource{src, p0}
}

// shiftedSource is a PanelSource whose row p is row p+off of another.
type shiftedSource struct {
	src PanelSource
	off int
}

func (s shiftedSource) PackPanel(dst []float32, nr, p0, kb, j0, nb int) {
	s.src.PackPanel(dst, nr, p0+s.off, kb, j0, nb)
}

// gemmParallel runs gemmBlock on one contiguous range of C per worker
// (of the larger dimension of C, aligned to the micro-tile so no tile
// straddles two workers), on the worker pool.
func gemmParallel(kern *microKernel, workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, src PanelSource, c []float32, ldc int, ep *Epilogue) {
	t := newGemmTask(transA, transB, m, n, k, alpha, a, lda, nil, b, ldb, src, c, ldc, ep)
	t.kern = kern
	t.runOverC(workers, kern.mr, kern.nr)
}

// sgemmSplitK handles products whose k is much larger than m and n (a box
// head's fc6: 1024 x 1024 x 25088): splitting C would make every worker
// pack the whole of one operand, so instead each worker takes a range of
// k, the first accumulating into C and the others into zeroed private
// m x n buffers that are added into C at the end. Every operand is packed
// once in all.
func sgemmSplitK(kern *microKernel, workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, src PanelSource, c []float32, ldc int) {
	t := newGemmTask(transA, transB, m, n, k, alpha, a, lda, nil, b, ldb, src, c, ldc, nil)
	t.kern = kern
	t.runOverK(workers, kc)
}

// bRowsFrom returns op(B)[p0:, :] of a row-major B (B^T when transB).
func bRowsFrom(b []float32, ldb int, transB bool, p0 int) []float32 {
	if transB {
		return b[p0:]
	}
	return b[p0*ldb:]
}

// addSplitParts adds the partial products of a split-k GEMM (m x n, dense)
// into C in order and gives their buffers back (gemmTask.runOverK: the
// first k range accumulates into C, the others into pooled zeroed buffers).
func addSplitParts(c []float32, ldc, m, n int, parts [][]float32) {
	for _, p := range parts {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j, v := range p[i*n : i*n+n] {
				row[j] += v
			}
		}
		putSplitBuf(p)
	}
}

// splitFree keeps the split-k partial-sum buffers (float32 and bf16 GEMMs) between calls.
var splitFree struct {
	sync.Mutex
	bufs [][]float32
}

// getSplitBuf returns a zeroed buffer of length n.
func getSplitBuf(n int) []float32 {
	splitFree.Lock()
	for i, b := range splitFree.bufs {
		if cap(b) >= n {
			splitFree.bufs = append(splitFree.bufs[:i], splitFree.bufs[i+1:]...)
			splitFree.Unlock()
			b = b[:n]
			clear(b)
			return b
		}
	}
	splitFree.Unlock()
	return make([]float32, n)
}

func putSplitBuf(b []float32) {
	splitFree.Lock()
	defer splitFree.Unlock()
	if len(splitFree.bufs) < maxFree {
		splitFree.bufs = append(splitFree.bufs, b)
	}
}

// gemmBlock adds alpha*op(A)*op(B) into rows [i0,i1) and columns [j0,j1)
// of C, serially. With an epilogue it overwrites them instead, with
// alpha*ep.Scale folded into the packed A and the rest of ep applied as
// each tile receives its last slice of k.
//
// Loop order: for each panel of up to mp rows of A and each kc-deep slice
// of k, the A panel is packed once and reused across every nc-wide panel
// of B, so each operand is packed exactly once per call (the classic
// jc-pc-ic order repacks A for every column panel, which for the tall-k,
// wide-n products of a box head's backward meant packing A dozens of
// times).
func gemmBlock(kern *microKernel, transA, transB bool, i0, i1, j0, j1, k int, alpha float32, a []float32, lda int, b []float32, ldb int, src PanelSource, c []float32, ldc int, ep *Epilogue) {
	buf := getPackBuf()
	defer putPackBuf(buf)
	mr, nr := kern.mr, kern.nr
	tile := buf.tile[:mr*nr]
	var rowScale []float32
	if ep != nil {
		rowScale = ep.Scale
	}
	for ip := i0; ip < i1; ip += mp {
		mpb := min(mp, i1-ip)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			packA(buf.a, mr, transA, a, lda, ip, mpb, pc, kb, alpha, rowScale, &buf.scale)
			first, last := pc == 0, pc+kb >= k
			for jc := j0; jc < j1; jc += nc {
				nb := min(nc, j1-jc)
				if src != nil {
					src.PackPanel(buf.b[:kb*((nb+nr-1)/nr*nr)], nr, pc, kb, jc, nb)
				} else {
					packB(buf.b, nr, transB, b, ldb, pc, kb, jc, nb)
				}
				for ic := 0; ic < mpb; ic += mc {
					mb := min(mc, mpb-ic)
					for jr := 0; jr < nb; jr += nr {
						bs := buf.b[jr*kb : jr*kb+kb*nr]
						w := min(nr, nb-jr)
						for ir := ic; ir < ic+mb; ir += mr {
							as := buf.a[ir*kb : ir*kb+kb*mr]
							h := min(mr, mpb-ir)
							row, col := ip+ir, jc+jr
							off := row*ldc + col
							if ep != nil {
								storeTileEp(kern, kb, as, bs, tile, c, ldc, row, col, h, w, first, last, ep, &buf.ep)
								continue
							}
							if h == mr && w == nr {
								kern.fn(kb, as, bs, c[off:], ldc)
								continue
							}
							clear(tile)
							kern.edgeFn(h, w)(kb, as, bs, tile, nr)
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

// storeTileEp computes the h x w tile of C at (row, col) for one slice of
// k: overwritten on the first slice, accumulated after, and finished with
// ep's shift, residual and ReLU on the last. Full tiles go through the
// kernel's fused store when it has one (args is its argument block); the
// others through tile, in Go.
func storeTileEp(kern *microKernel, kb int, as, bs, tile, c []float32, ldc, row, col, h, w int, first, last bool, ep *Epilogue, args *kernEp) {
	mr, nr := kern.mr, kern.nr
	off := row*ldc + col
	if h == mr && w == nr && kern.fnEp != nil {
		setKernEp(args, ep, row, col, h, w, first, last)
		kern.fnEp(kb, as, bs, c[off:], ldc, args)
		return
	}
	clear(tile)
	kern.edgeFn(h, w)(kb, as, bs, tile, nr)
	if kern.storeEdge != nil {
		setKernEp(args, ep, row, col, h, w, first, last)
		kern.storeEdge(h, w, tile, c[off:], ldc, args)
		return
	}
	for i := 0; i < h; i++ {
		dst := c[off+i*ldc : off+i*ldc+w]
		src := tile[i*nr : i*nr+w]
		if !first {
			for j, v := range dst {
				src[j] += v
			}
		}
		if !last {
			copy(dst, src)
			continue
		}
		var t float32
		if ep.Shift != nil {
			t = ep.Shift[row+i]
		}
		var res []float32
		if ep.Residual != nil {
			ro := (row+i)*ep.LdResidual + col
			res = ep.Residual[ro : ro+w]
		}
		for j, v := range src {
			v += t
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

// setKernEp fills args for a fused store of the h x w tile at (row, col):
// add into C unless first, and only when last the shift, the residual
// and the ReLU floor (an earlier block's store adds zeros and clamps at
// -Inf). It checks that the rows of ep.Shift and ep.Residual the store
// reads exist.
func setKernEp(args *kernEp, ep *Epilogue, row, col, h, w int, first, last bool) {
	*args = kernEp{shift: &zeroTile[0], res: &zeroTile[0], floor: negInf}
	if !first {
		args.load = 1
	}
	if !last {
		return
	}
	if ep.Shift != nil {
		args.shift = &ep.Shift[row : row+h][0]
	}
	if ep.Residual != nil {
		ro := row*ep.LdResidual + col
		_ = ep.Residual[ro+(h-1)*ep.LdResidual+w-1]
		args.res, args.ldr = &ep.Residual[ro], uintptr(4*ep.LdResidual)
	}
	if ep.ReLU {
		args.floor = 0
	}
}

// packA copies alpha*op(A)[i0:i0+mb, p0:p0+kb] into strips of mr rows: strip
// s holds, for each p, the mr values of rows s*mr..s*mr+mr-1 (zero padded).
// A non-nil rowScale multiplies row r of op(A) by rowScale[r] as well; sc
// is scratch space for one strip's multipliers.
func packA(dst []float32, mr int, transA bool, a []float32, lda, i0, mb, p0, kb int, alpha float32, rowScale []float32, sc *[16]float32) {
	for s := 0; s*mr < mb; s++ {
		strip := dst[s*mr*kb : (s+1)*mr*kb]
		h := min(mr, mb-s*mr)
		r0 := i0 + s*mr
		// sc: per-row multipliers of this strip (mr <= 16).
		for i := range h {
			sc[i] = alpha
			if rowScale != nil {
				sc[i] = alpha * rowScale[r0+i]
			}
		}
		if !transA {
			if mr == 12 && h == 12 && kb >= 8 && packStrip12 != nil {
				packStrip12(strip, a[r0*lda+p0:], lda, kb, sc)
				continue
			}
			for i := 0; i < mr; i++ {
				if i >= h {
					for p := 0; p < kb; p++ {
						strip[p*mr+i] = 0
					}
					continue
				}
				row := a[(r0+i)*lda+p0 : (r0+i)*lda+p0+kb]
				if f := sc[i]; f != 1 {
					for p, v := range row {
						strip[p*mr+i] = f * v
					}
					continue
				}
				for p, v := range row {
					strip[p*mr+i] = v
				}
			}
			continue
		}
		for p := 0; p < kb; p++ {
			src := a[(p0+p)*lda+r0:]
			d := strip[p*mr : p*mr+mr]
			for i := range d {
				if i < h {
					d[i] = sc[i] * src[i]
				} else {
					d[i] = 0
				}
			}
		}
	}
}

// packB copies op(B)[p0:p0+kb, j0:j0+nb] into strips of nr columns: strip s
// holds, for each p, the nr values of columns s*nr..s*nr+nr-1 (zero padded).
func packB(dst []float32, nr int, transB bool, b []float32, ldb, p0, kb, j0, nb int) {
	for s := 0; s*nr < nb; s++ {
		strip := dst[s*nr*kb : (s+1)*nr*kb]
		w := min(nr, nb-s*nr)
		c0 := j0 + s*nr
		if !transB {
			// Row segments are contiguous on both sides: copy (memmove)
			// instead of an element loop.
			for p := 0; p < kb; p++ {
				off := (p0+p)*ldb + c0
				d := strip[p*nr : p*nr+nr]
				copy(d[:w], b[off:off+w])
				if w < nr {
					clear(d[w:])
				}
			}
			continue
		}
		if nr == 32 && w == 32 && kb >= 8 && packStripBT32 != nil {
			packStripBT32(strip, b[c0*ldb+p0:], ldb, kb)
			continue
		}
		for j := 0; j < nr; j++ {
			if j >= w {
				for p := 0; p < kb; p++ {
					strip[p*nr+j] = 0
				}
				continue
			}
			col := b[(c0+j)*ldb+p0 : (c0+j)*ldb+p0+kb]
			for p, v := range col {
				strip[p*nr+j] = v
			}
		}
	}
}

// kernel4x4 adds the product of a packed mr x kb strip of A and a packed
// kb x nr strip of B into the 4x4 tile of c at leading dimension ldc.
func kernel4x4(kb int, a, b []float32, c []float32, ldc int) {
	const mr, nr = 4, 4
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	var c20, c21, c22, c23 float32
	var c30, c31, c32, c33 float32
	a = a[:kb*mr]
	b = b[:kb*nr]
	for len(a) >= 4 && len(b) >= 4 {
		aa := a[:4:4]
		bb := b[:4:4]
		a0, a1, a2, a3 := aa[0], aa[1], aa[2], aa[3]
		b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
		a = a[4:]
		b = b[4:]
	}
	r := c[0:4:4]
	r[0] += c00
	r[1] += c01
	r[2] += c02
	r[3] += c03
	r = c[ldc : ldc+4 : ldc+4]
	r[0] += c10
	r[1] += c11
	r[2] += c12
	r[3] += c13
	r = c[2*ldc : 2*ldc+4 : 2*ldc+4]
	r[0] += c20
	r[1] += c21
	r[2] += c22
	r[3] += c23
	r = c[3*ldc : 3*ldc+4 : 3*ldc+4]
	r[0] += c30
	r[1] += c31
	r[2] += c32
	r[3] += c33
}
