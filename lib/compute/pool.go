package compute

import (
	"github.com/detlab/detlab/lib/internal/freelist"
	"github.com/detlab/detlab/lib/internal/workpool"
)

// parallelTask is the work of one parallel call, split into parts: Run(w)
// does part w of the call's workers. Tasks are pooled structs, not
// closures, so that handing one to the pool allocates nothing.
type parallelTask = workpool.Task

// runParallel runs t.Run(w) for every w in [0, workers): part 0 on the
// calling goroutine, the others on lib/internal/workpool's long-lived
// workers (shared with lib/nn's loops; a goroutine per part was a third of
// a training step's heap allocations). Parts no worker is free to take
// (concurrent or nested calls) run on the caller after its own, so the
// process never runs more kernel goroutines than the pool plus its
// callers: the cores are not oversubscribed and nesting cannot deadlock.
func runParallel(workers int, t parallelTask) { workpool.Run(workers, t) }

// gemmTask is one parallel product, float32 (kern) or bfloat16 (kern16),
// split either over C (one contiguous range of tiles of its larger
// dimension per worker) or over k (splitK: the first range accumulates
// into C, the others into the zeroed buffers in parts). Its operands are
// copies, not pointers to the caller's values, so that the caller's
// epilogue and converted A stay on its stack.
type gemmTask struct {
	kern   *microKernel
	kern16 *bf16MicroKernel

	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	pa             packedA // kern16 only: op(A) converted, when hasPA
	hasPA          bool
	b              []float32
	ldb            int
	src            PanelSource
	c              []float32
	ldc            int
	ep             Epilogue
	hasEp          bool

	workers int
	// Split over C: tiles of unit rows (splitRows) or columns, total in all.
	splitRows          bool
	tiles, unit, total int
	// Split over k: ranges aligned to block; parts[w] is worker w's
	// partial sum (w >= 1).
	splitK bool
	block  int
	parts  [][]float32
}

var gemmTasks freelist.List[gemmTask]

// newGemmTask returns a pooled task holding the product's operands; ep
// and pa are copied (nil means none).
func newGemmTask(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, pa *packedA, b []float32, ldb int, src PanelSource, c []float32, ldc int, ep *Epilogue) *gemmTask {
	t := gemmTasks.Get()
	parts := t.parts[:0]
	*t = gemmTask{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
		a: a, lda: lda, b: b, ldb: ldb, src: src, c: c, ldc: ldc, parts: parts}
	if pa != nil {
		t.pa, t.hasPA = *pa, true
	}
	if ep != nil {
		t.ep, t.hasEp = *ep, true
	}
	return t
}

// free drops the task's references (so pooled tasks keep no matrices
// alive) and pools it.
func (t *gemmTask) free() {
	parts := t.parts[:0]
	clear(t.parts[:cap(t.parts)])
	*t = gemmTask{parts: parts}
	gemmTasks.Put(t)
}

// runOverC runs the product with C split over workers, aligned to the
// micro-tile (mr x nr) so that no tile straddles two workers.
func (t *gemmTask) runOverC(workers, mr, nr int) {
	t.splitRows = t.m >= t.n
	t.total, t.unit = t.n, nr
	if t.splitRows {
		t.total, t.unit = t.m, mr
	}
	t.tiles = (t.total + t.unit - 1) / t.unit
	t.workers = min(workers, t.tiles)
	runParallel(t.workers, t)
	t.free()
}

// runOverK runs the product with k split over workers in ranges aligned
// to block, then adds the partial sums into C in order.
func (t *gemmTask) runOverK(workers, block int) {
	t.splitK, t.workers, t.block = true, workers, block
	for w := range workers {
		var p []float32
		if w > 0 {
			p = getSplitBuf(t.m * t.n)
		}
		t.parts = append(t.parts, p)
	}
	runParallel(workers, t)
	addSplitParts(t.c, t.ldc, t.m, t.n, t.parts[1:])
	t.free()
}

// Run implements parallelTask.
func (t *gemmTask) Run(w int) {
	var ep *Epilogue
	if t.hasEp {
		ep = &t.ep
	}
	if !t.splitK {
		lo := t.tiles * w / t.workers * t.unit
		hi := min(t.tiles*(w+1)/t.workers*t.unit, t.total)
		if lo >= hi {
			return
		}
		if t.splitRows {
			t.block16or32(lo, hi, 0, t.n, t.k, t.a, t.pa, t.b, t.src, t.c, t.ldc, ep)
		} else {
			t.block16or32(0, t.m, lo, hi, t.k, t.a, t.pa, t.b, t.src, t.c, t.ldc, ep)
		}
		return
	}
	p0 := t.k * w / t.workers / t.block * t.block
	p1 := t.k
	if w < t.workers-1 {
		p1 = t.k * (w + 1) / t.workers / t.block * t.block
	}
	if p0 >= p1 {
		return
	}
	dst, ld := t.c, t.ldc
	if w > 0 {
		dst, ld = t.parts[w], t.n
	}
	// op(A)[:, p0:], op(B)[p0:, :]
	var as, bs []float32
	pa := t.pa
	switch {
	case t.hasPA:
		pa.off += p0 / 2
	case t.transA:
		as = t.a[p0*t.lda:]
	default:
		as = t.a[p0:]
	}
	if t.src == nil {
		bs = bRowsFrom(t.b, t.ldb, t.transB, p0)
	}
	t.block16or32(0, t.m, 0, t.n, p1-p0, as, pa, bs, srcAt(t.src, p0), dst, ld, nil)
}

// block16or32 runs the task's serial block product (gemmBlock or
// gemmBlockBF16) on rows [i0,i1) and columns [j0,j1) of dst with the
// given k and operands.
func (t *gemmTask) block16or32(i0, i1, j0, j1, k int, a []float32, pa packedA, b []float32, src PanelSource, dst []float32, ld int, ep *Epilogue) {
	if t.kern16 == nil {
		gemmBlock(t.kern, t.transA, t.transB, i0, i1, j0, j1, k, t.alpha, a, t.lda, b, t.ldb, src, dst, ld, ep)
		return
	}
	var ppa *packedA
	if t.hasPA {
		ppa = &pa
	}
	gemmBlockBF16(t.kern16, t.transA, t.transB, i0, i1, j0, j1, k, t.alpha, a, t.lda, ppa, b, t.ldb, src, dst, ld, ep)
}
