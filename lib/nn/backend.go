package nn

import (
	"runtime"
	"sync"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/internal/freelist"
	"github.com/detlab/detlab/lib/internal/workpool"
)

// Backend runs the heavy kernels: matrix products, convolutions, the
// per-channel BatchNorm arithmetic and pooling. Every layer of this package
// reaches them only through a Backend, so an OpenBLAS, oneDNN or GPU
// implementation can slot in by implementing this interface (embedding CPU
// and overriding only what it accelerates is the easy way).
//
// All slices are row-major float32; activations are NCHW. Kernels accumulate
// into gradient slices (they add, never overwrite), except where a comment
// says otherwise.
type Backend interface {
	// Name says which implementation runs ("cpu (compute.Sgemm)", ...).
	Name() string
	// Gemm is compute.Sgemm's contract: C = alpha*op(A)*op(B) + beta*C,
	// row-major, beta 0 overwriting C.
	Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	// Conv2d writes y (N,K,OH,OW) = conv(x (N,C,H,W), w (K,C,KH,KW)) + bias
	// (bias may be nil). y is overwritten.
	Conv2d(geo ConvGeom, x, w, bias, y []float32, s Scratch)
	// Conv2dBackward adds the gradients for dy to dx, dw and db; any of
	// them may be nil when not wanted.
	Conv2dBackward(geo ConvGeom, x, w, dy, dx, dw, db []float32, s Scratch)
	// ChannelStats returns per-channel mean and biased variance of x
	// (N,C,HW), accumulated in float64.
	ChannelStats(x []float32, n, c, hw int, mean, variance []float64)
	// ChannelAffine writes y = x*scale[c] + shift[c], then max(y, 0) when
	// relu. y may alias x.
	ChannelAffine(x, y []float32, n, c, hw int, scale, shift []float32, relu bool)
	// MaxPool2d writes y and, per output, the flat input index (within its
	// plane) of the first maximum in row-major window order; arg may be
	// nil (inference).
	MaxPool2d(geo PoolGeom, x, y []float32, arg []int32)
	// MaxPool2dBackward adds dy to dx at the recorded arg positions.
	MaxPool2dBackward(geo PoolGeom, dy, dx []float32, arg []int32)
}

// Scratch hands out temporary buffers (im2col columns) to kernels. Arena
// implements it; nil means plain allocation.
type Scratch interface {
	// Get returns a slice of length n; its contents are undefined.
	Get(n int) []float32
	// Put returns a slice obtained from Get for reuse.
	Put(b []float32)
}

var (
	backendMu sync.RWMutex
	backend   Backend = CPU{}
)

// SetBackend makes b the backend used by graphs created afterwards (a nil b
// restores the pure-Go CPU backend).
func SetBackend(b Backend) {
	backendMu.Lock()
	defer backendMu.Unlock()
	if b == nil {
		b = CPU{}
	}
	backend = b
}

// CurrentBackend returns the backend new graphs use.
func CurrentBackend() Backend {
	backendMu.RLock()
	defer backendMu.RUnlock()
	return backend
}

// CPU is the portable backend: im2col plus compute.Sgemm for convolutions,
// plain Go loops for the rest, split over the available cores.
type CPU struct{}

// Name reports the backend, the GEMM implementation it calls and the
// convolution paths it takes besides im2col (Winograd, oneDNN).
func (CPU) Name() string {
	return "cpu (im2col + compute.Sgemm: " + compute.Backend() + "; " + winogradDescription() + "; " + patchRowsDescription() + "; conv " + compute.ConvBackend() + ")"
}

// Gemm calls compute.Sgemm, which is itself parallel (pure Go or
// OpenBLAS, see compute.Backend), so it is not split again here.
func (CPU) Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	compute.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// maxWorkers caps the goroutines a kernel splits into (the project's
// machines have 2 cores; more only adds scheduling).
var maxWorkers = 0

func numWorkers() int {
	w := runtime.GOMAXPROCS(0)
	if maxWorkers > 0 && w > maxWorkers {
		w = maxWorkers
	}
	return w
}

// parallelFor runs fn over [0,n) split into contiguous ranges, one per
// worker: the first on the calling goroutine, the others on long-lived pool
// workers (a goroutine per chunk was a quarter of a training step's heap
// allocations); small n runs inline. When every pool worker is busy (a
// parallelFor inside another one's chunk) the caller runs the chunks left
// after its own, so nesting cannot deadlock. fn escapes to the heap (a closure is
// one allocation per call): hot kernels use parallelJob with a pooled
// job instead.
func parallelFor(n int, fn func(lo, hi int)) { parallelJob(n, funcJob(fn)) }

// rangeJob is the body of a parallel loop as a value: run does [lo, hi).
// A kernel's job is a struct taken from a freelist.List (runPooled), so handing
// it to the pool allocates nothing, unlike a closure.
type rangeJob interface{ run(lo, hi int) }

// funcJob adapts a closure (a func value is stored in an interface without
// allocating; the closure itself is what allocates).
type funcJob func(lo, hi int)

func (f funcJob) run(lo, hi int) { f(lo, hi) }

// runPooled runs job over [0,n) as parallelJob does, from a struct of
// pool (the job is copied in, and cleared before going back, so that no
// pooled job keeps a kernel's buffers alive).
func runPooled[T any, P interface {
	*T
	rangeJob
}](n int, pool *freelist.List[T], job T) {
	p := P(pool.Get())
	*p = job
	parallelJob(n, p)
	var zero T
	*p = zero
	pool.Put((*T)(p))
}

// parallelJob is parallelFor with the body as a rangeJob: the chunks run
// on lib/internal/workpool's workers (shared with lib/compute's products,
// spinning briefly between calls), those no worker is free to take on the
// caller.
func parallelJob(n int, job rangeJob) {
	workers := numWorkers()
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		job.run(0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	t := chunkTasks.Get()
	*t = chunkTask{job: job, n: n, chunk: chunk}
	workpool.Run((n+chunk-1)/chunk, t)
	*t = chunkTask{}
	chunkTasks.Put(t)
}

// chunkTask is a parallelJob as a workpool.Task: part w is the w-th chunk
// of [0, n).
type chunkTask struct {
	job      rangeJob
	n, chunk int
}

var chunkTasks freelist.List[chunkTask]

// Run implements workpool.Task.
func (t *chunkTask) Run(w int) {
	lo := w * t.chunk
	t.job.run(lo, min(t.n, lo+t.chunk))
}

// Arena recycles float32 buffers between iterations: a graph created with
// an arena takes its activations, gradients and im2col columns from it and
// gives them back on Graph.Release. A request is served by the smallest
// free buffer that holds it and is at most twice its size (cut to the
// length asked), so batches of other sizes (multi-scale training) reuse
// what earlier ones left instead of growing the arena by every new shape.
// It is safe for concurrent use.
type Arena struct {
	mu    sync.Mutex
	free  spareList
	alloc func(n int) []float32 // nil: make
	// books are released graphs' bookkeeping sets (Vars, tape, lists),
	// ready for the next graphs.
	books []*graphBooks
}

// maxBooks bounds the bookkeeping sets an arena keeps (one per graph alive
// at once is what a training loop needs).
const maxBooks = 4

// takeBooks returns a recycled bookkeeping set, or a new one.
func (a *Arena) takeBooks() *graphBooks {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.books); n > 0 {
		b := a.books[n-1]
		a.books = a.books[:n-1]
		return b
	}
	return &graphBooks{}
}

// putBooks keeps a released graph's bookkeeping set (already reset).
func (a *Arena) putBooks(b *graphBooks) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.books) < maxBooks {
		a.books = append(a.books, b)
	}
}

// NewArena returns an empty arena whose buffers are ordinary Go memory.
func NewArena() *Arena { return &Arena{} }

// NewArenaWith returns an empty arena that takes new buffers from alloc (a
// device backend's memory that both the host and the device can address)
// instead of make. alloc must return a slice of length n. Graphs using it
// also take a parameter's first gradient from alloc (zeroed, kept with the
// parameter, never recycled), so gradients live where the kernels run.
func NewArenaWith(alloc func(n int) []float32) *Arena {
	return &Arena{alloc: alloc}
}

func (a *Arena) newBuffer(n int) []float32 {
	if a.alloc != nil {
		return a.alloc(n)
	}
	return make([]float32, n)
}

// Get returns a buffer of length n with undefined contents.
func (a *Arena) Get(n int) []float32 {
	if a == nil {
		return make([]float32, n)
	}
	a.mu.Lock()
	b := a.free.take(n)
	a.mu.Unlock()
	if b == nil {
		b = a.newBuffer(n)
	}
	return b
}

// Put gives b back for reuse (all of its capacity).
func (a *Arena) Put(b []float32) {
	if a == nil || cap(b) == 0 {
		return
	}
	a.mu.Lock()
	a.free.put(b)
	a.mu.Unlock()
}

// Held returns the number of float32 elements the arena keeps for reuse.
func (a *Arena) Held() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, b := range a.free {
		n += len(b)
	}
	return n
}

// heapScratch is the Scratch used without an arena.
type heapScratch struct{}

func (heapScratch) Get(n int) []float32 { return make([]float32, n) }
func (heapScratch) Put([]float32)       {}
