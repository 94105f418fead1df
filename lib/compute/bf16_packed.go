package compute

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/detlab/detlab/lib/internal/freelist"
)

// packedA is op(A) converted once to bfloat16 pairs: the pair q of row i
// at pairs[i*ld+off+q], rows past m zero up to a multiple of bf16RowPad.
type packedA struct {
	pairs   []uint32
	ld, off int
}

// bf16RowPad is the row multiple a BF16Matrix is zero-padded to: every
// kernel's mr divides it, so a kernel's edge strip reads padding, not past
// the end.
const bf16RowPad = 12

// BF16Matrix is an m x k float32 matrix rounded to bfloat16 once, to be
// the left operand (A) of several products: a convolution's weights, used
// for every image of a batch. Where HasBF16 is true it holds the pairs the
// native kernel multiplies (so no product converts A again); elsewhere a
// rounded float32 copy. It does not alias the matrix it was made from.
type BF16Matrix struct {
	m, k int
	pa   packedA   // native
	r    []float32 // emulated: rounded copy, leading dimension k
}

// NewBF16Matrix converts the m x k matrix a (leading dimension lda) to
// bfloat16 (round to nearest, ties to even). Release returns its memory
// for reuse once the products are done. It panics on inconsistent
// dimensions, as Sgemm does.
func NewBF16Matrix(m, k int, a []float32, lda int) *BF16Matrix {
	if m < 0 || k < 0 {
		panic(fmt.Sprintf("compute: NewBF16Matrix: negative dimension m=%d k=%d", m, k))
	}
	checkMatrix("a", m, k, a, lda)
	w := &BF16Matrix{m: m, k: k}
	if !bf16Enabled() {
		w.r = make([]float32, m*k)
		for i := 0; i < m; i++ {
			RoundBF16Slice(w.r[i*k:(i+1)*k], a[i*lda:i*lda+k])
		}
		return w
	}
	w.pa = convertBF16A(m, k, a, lda)
	return w
}

// convertBF16A converts the m x k matrix a to bfloat16 pairs, each row's
// (k+1)/2 pairs contiguous (an odd last value paired with zero), in
// parallel for large matrices.
func convertBF16A(m, k int, a []float32, lda int) packedA {
	kq := (k + 1) / 2
	rows := (m + bf16RowPad - 1) / bf16RowPad * bf16RowPad
	pairs := getBF16Pairs(rows * kq)
	clear(pairs[m*kq:])
	t := cvtTasks.Get()
	*t = cvtTask{pairs: pairs, a: a, m: m, k: k, lda: lda,
		workers: min(runtime.GOMAXPROCS(0), max(m*k/(1<<16), 1), max(m, 1))}
	runParallel(t.workers, t)
	*t = cvtTask{}
	cvtTasks.Put(t)
	return packedA{pairs: pairs, ld: kq}
}

// cvtTask is convertBF16A's parallel part: worker w converts its share of
// the rows.
type cvtTask struct {
	pairs              []uint32
	a                  []float32
	m, k, lda, workers int
}

var cvtTasks freelist.List[cvtTask]

// Run implements parallelTask.
func (t *cvtTask) Run(w int) {
	kq := (t.k + 1) / 2
	for i := t.m * w / t.workers; i < t.m*(w+1)/t.workers; i++ {
		cvtPairs(t.pairs[i*kq:(i+1)*kq], t.a[i*t.lda:i*t.lda+t.k])
	}
}

// Rows returns m, the number of rows.
func (w *BF16Matrix) Rows() int { return w.m }

// Cols returns k, the number of columns.
func (w *BF16Matrix) Cols() int { return w.k }

// Release hands w's memory back for reuse by later matrices; w must not
// be used afterwards.
func (w *BF16Matrix) Release() {
	if w.pa.pairs != nil {
		putBF16Pairs(w.pa.pairs)
	}
	w.pa, w.r = packedA{}, nil
}

// check panics when w was released or C and the epilogue do not fit.
func (w *BF16Matrix) check(name string, n int, c []float32, ldc int, ep Epilogue) {
	if w.pa.pairs == nil && w.r == nil && w.m*w.k > 0 {
		panic("compute: BF16Matrix." + name + ": used after Release")
	}
	if n < 0 {
		panic(fmt.Sprintf("compute: BF16Matrix.%s: negative n=%d", name, n))
	}
	checkMatrix("c", w.m, n, c, ldc)
	checkEpilogue(w.m, n, ep)
}

// Gemm is SgemmBF16Epilogue with A = w (untransposed) and the k x n
// matrix B (leading dimension ldb): C = ep applied to bf16(w)*bf16(B),
// overwriting C.
func (w *BF16Matrix) Gemm(n int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	w.check("Gemm", n, c, ldc, ep)
	checkMatrix("b", w.k, n, b, ldb)
	if w.m == 0 || n == 0 {
		return
	}
	if w.r != nil || w.k == 0 {
		SgemmBF16Epilogue(false, false, w.m, n, w.k, w.r, max(w.k, 1), b, ldb, c, ldc, ep)
		return
	}
	sgemmBF16KernelEp(bf16Native, false, false, w.m, n, w.k, nil, 0, &w.pa, b, ldb, nil, c, ldc, &ep)
}

// Panels is SgemmBF16Panels with A = w: C = ep applied to bf16(w)*bf16(B),
// B (k x n) supplied by src.
func (w *BF16Matrix) Panels(n int, src PanelSource, c []float32, ldc int, ep Epilogue) {
	w.check("Panels", n, c, ldc, ep)
	if w.m == 0 || n == 0 {
		return
	}
	if w.r != nil || w.k == 0 {
		SgemmBF16Panels(w.m, n, w.k, w.r, max(w.k, 1), src, c, ldc, ep)
		return
	}
	sgemmBF16KernelEp(bf16Native, false, false, w.m, n, w.k, nil, 0, &w.pa, nil, 0, src, c, ldc, &ep)
}

// bf16PairsFree keeps released BF16Matrix buffers.
var bf16PairsFree struct {
	sync.Mutex
	bufs [][]uint32
}

// getBF16Pairs returns a buffer of length n (contents undefined): the
// smallest free one that fits, if it is at most twice n.
func getBF16Pairs(n int) []uint32 {
	bf16PairsFree.Lock()
	best := -1
	for i, b := range bf16PairsFree.bufs {
		if cap(b) >= n && cap(b) <= 2*n && (best < 0 || cap(b) < cap(bf16PairsFree.bufs[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := bf16PairsFree.bufs[best]
		bf16PairsFree.bufs = append(bf16PairsFree.bufs[:best], bf16PairsFree.bufs[best+1:]...)
		bf16PairsFree.Unlock()
		return b[:n]
	}
	bf16PairsFree.Unlock()
	return make([]uint32, n)
}

func putBF16Pairs(b []uint32) {
	bf16PairsFree.Lock()
	defer bf16PairsFree.Unlock()
	if len(bf16PairsFree.bufs) < 16 {
		bf16PairsFree.bufs = append(bf16PairsFree.bufs, b)
	}
}
