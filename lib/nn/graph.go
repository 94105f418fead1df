package nn

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unsafe"

	"github.com/detlab/detlab/lib/tensor"
)

// ErrNoGrad reports a Backward call that cannot run: an inference graph, a
// loss that does not depend on anything trainable, or a second Backward.
var ErrNoGrad = errors.New("nn: nothing to differentiate")

// Var is a value in a Graph: a tensor and, once Backward has run, the
// gradient of the loss with respect to it.
type Var struct {
	// Value is the forward result. Do not modify it before Backward.
	Value *tensor.Tensor
	// Grad is the gradient accumulated by Backward; nil when no gradient
	// reached the value. For a parameter it is the Param's own Grad.
	Grad *tensor.Tensor

	requiresGrad bool
	g            *Graph
}

// RequiresGrad reports whether gradients flow back through v.
func (v *Var) RequiresGrad() bool { return v != nil && v.requiresGrad }

// Shape returns the shape of v's value.
func (v *Var) Shape() []int { return v.Value.Shape() }

// BackwardFunc receives the gradient of the loss with respect to an op's
// output and adds the gradients with respect to its inputs into gradIns.
// gradIns[i] is the (zero-initialised on first use) gradient buffer of input
// i, shaped like that input, or nil when input i needs no gradient.
type BackwardFunc func(gradOut *tensor.Tensor, gradIns []*tensor.Tensor)

type record struct {
	out      *Var
	inputs   []*Var
	backward BackwardFunc
	// op replaces backward for this package's own ops (see backwardOp).
	op backwardOp
	// view: out is inputs[0]'s data under another shape, and backward
	// only adds gy into gin[0], so the output's gradient buffer can
	// become the input's (no copy, no second buffer).
	view bool
}

// Graph records one forward pass so that Backward can run it in reverse
// (define-by-run reverse-mode differentiation). Create one per forward pass
// with NewGraph (training) or NewInferenceGraph (nothing is recorded).
// A Graph is not safe for concurrent use.
type Graph struct {
	grad     bool
	done     bool
	tape     []record
	backend  Backend
	arena    *Arena
	owned    [][]float32
	released bool
	autocast Precision
	// eager: Backward recycles values as soon as nothing left needs them.
	eager bool
	// spare holds owned buffers whose contents are dead (gradients
	// already propagated, returned scratch, values eager release freed)
	// for best-fit reuse within this graph before Release.
	spare spareList
	// mu guards owned and spare for kernels that borrow scratch from
	// several goroutines.
	mu sync.Mutex
	// books holds the graph's bookkeeping memory (Var structs, input
	// lists, the tape's backing array, Backward's plan): taken from the
	// arena's recycled sets by WithArena and given back on Release, so a
	// steady-state training loop allocates none of it.
	books *graphBooks
	// ops holds the op structs of a graph without bookkeeping set (no
	// arena); see opLists.
	ops *graphOps
}

// graphBooks is a graph's recyclable bookkeeping memory.
type graphBooks struct {
	vars    []Var   // unused part of the current chunk
	chunks  [][]Var // every chunk, for Release
	lists   []*Var  // unused part of the current input-list chunk
	lchunks [][]*Var
	// used and lused count the chunks handed out (the current included).
	used, lused int
	tape        []record
	owned       [][]float32
	spare       spareList
	gradIns     []*tensor.Tensor
	// tensors are the graph tensors made on this set's graphs, by
	// buffer and shape (see tensorKey); kept across graphs.
	tensors map[tensorKey]*tensor.Tensor
	// planValueFrees' maps and result.
	ownedAt  map[*float32][]float32
	first    map[*float32]int
	produced map[*float32]bool
	frees    []valueFree
	// ops are the recorded ops' backward structs (see backwardOp).
	ops graphOps
}

const (
	varChunk  = 128 // Vars per chunk
	listChunk = 256 // input-list entries per chunk
)

// reset makes every chunk available again and clears the tape and lists
// (whose closures and buffers a pooled set must not keep alive). The Vars
// themselves are zeroed when handed out again, not here: a Var read after
// its graph's Release (which the contract forbids for values) keeps
// reading what it held until the next graph reuses it, as its value's
// buffer does.
func (b *graphBooks) reset() {
	b.vars, b.lists = nil, nil
	if len(b.chunks) > 0 {
		// The first chunk serves the next graph; the others wait in
		// chunks (behind it) and are handed out again in order.
		b.vars = b.chunks[0]
	}
	if len(b.lchunks) > 0 {
		b.lists = b.lchunks[0]
	}
	clear(b.tape)
	b.tape = b.tape[:0]
	clear(b.owned)
	b.owned = b.owned[:0]
	clear(b.spare)
	b.spare = b.spare[:0]
	clear(b.gradIns[:cap(b.gradIns)])
	b.gradIns = b.gradIns[:0]
	clear(b.ownedAt)
	clear(b.first)
	clear(b.produced)
	clear(b.frees)
	b.frees = b.frees[:0]
	b.ops.reset()
	b.used, b.lused = min(1, len(b.chunks)), min(1, len(b.lchunks))
}

// newVar returns a zeroed Var from g's chunks (a new chunk when they are
// used up).
func (g *Graph) newVar() *Var {
	b := g.books
	if b == nil {
		return &Var{}
	}
	if len(b.vars) == 0 {
		if b.used < len(b.chunks) {
			b.vars = b.chunks[b.used]
		} else {
			b.vars = make([]Var, varChunk)
			b.chunks = append(b.chunks, b.vars)
		}
		b.used++
	}
	v := &b.vars[0]
	b.vars = b.vars[1:]
	*v = Var{}
	return v
}

// varList returns a copy of vs that g owns (an op's input list) from g's
// chunks.
func (g *Graph) varList(vs ...*Var) []*Var {
	b := g.books
	if b == nil || len(vs) > listChunk {
		return append([]*Var(nil), vs...)
	}
	if len(b.lists) < len(vs) {
		if b.lused < len(b.lchunks) {
			b.lists = b.lchunks[b.lused]
		} else {
			b.lists = make([]*Var, listChunk)
			b.lchunks = append(b.lchunks, b.lists)
		}
		b.lused++
	}
	l := b.lists[:len(vs):len(vs)]
	copy(l, vs)
	b.lists = b.lists[len(vs):]
	return l
}

// spareList holds dead buffers in increasing capacity for best-fit reuse.
type spareList [][]float32

// put adds b (its whole capacity).
func (s *spareList) put(b []float32) {
	if cap(b) == 0 {
		return
	}
	b = b[:cap(b)]
	l := *s
	i, _ := slices.BinarySearchFunc(l, len(b), func(e []float32, n int) int { return cmp.Compare(len(e), n) })
	*s = slices.Insert(l, i, b)
}

// take returns the smallest buffer holding at least n and at most 2n
// elements, cut to length n, or nil.
func (s *spareList) take(n int) []float32 {
	l := *s
	i, _ := slices.BinarySearchFunc(l, n, func(e []float32, n int) int { return cmp.Compare(len(e), n) })
	if i == len(l) || len(l[i]) > 2*n {
		return nil
	}
	b := l[i]
	*s = slices.Delete(l, i, i+1)
	return b[:n]
}

// NewGraph returns a graph that records operations for Backward.
func NewGraph() *Graph { return &Graph{grad: true, backend: CurrentBackend()} }

// NewInferenceGraph returns a graph that records nothing (no-grad mode):
// ops only compute their values.
func NewInferenceGraph() *Graph { return &Graph{backend: CurrentBackend()} }

// WithArena makes g take its buffers from a and return them on Release. It
// returns g.
func (g *Graph) WithArena(a *Arena) *Graph {
	if g.arena == nil && a != nil && len(g.tape) == 0 && len(g.owned) == 0 {
		g.books = a.takeBooks()
		g.tape, g.owned, g.spare = g.books.tape, g.books.owned, g.books.spare
	}
	g.arena = a
	return g
}

// WithEagerRelease makes Backward give the buffer of each intermediate
// value back (for the gradients still to come) as soon as no backward
// function left to run can read it, as PyTorch frees saved tensors during
// backward: a training step's peak memory is then about the forward
// activations instead of the activations plus the gradients. It only acts
// with an arena (WithArena). After Backward, read no Var's Value except the
// loss's and those of inputs, leaves and parameters. It returns g.
func (g *Graph) WithEagerRelease() *Graph { g.eager = true; return g }

// WithBackend makes g run its kernels on b. It returns g.
func (g *Graph) WithBackend(b Backend) *Graph {
	if b != nil {
		g.backend = b
	}
	return g
}

// Backend returns the backend g's ops run on.
func (g *Graph) Backend() Backend { return g.backend }

// Recording reports whether g records operations for Backward.
func (g *Graph) Recording() bool { return g.grad }

// NewTensor returns a zeroed tensor owned by g: with an arena it is recycled
// on Release. Ops built with Op should allocate their outputs with it.
func (g *Graph) NewTensor(shape ...int) *tensor.Tensor {
	t := g.newZeroed(shape...)
	g.hostSync() // host code may write it at once (Syncer)
	return t
}

func (g *Graph) newTensorNoZero(shape ...int) *tensor.Tensor {
	n := numel(shape)
	if g.arena == nil {
		return tensor.New(copyShape(shape)...)
	}
	return g.tensorOf(graphScratch{g}.Get(n), shape)
}

// tensorOf returns a tensor of the given shape over b (len(b) must be its
// size): the one an earlier graph of g's bookkeeping set made for the same
// buffer and shape if there is one (see tensorKey), else a new one.
func (g *Graph) tensorOf(b []float32, shape []int) *tensor.Tensor {
	key, ok := makeTensorKey(b, shape)
	if !ok || g.books == nil {
		return tensor.MustFromSlice(b, copyShape(shape)...)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := g.books.tensors[key]; t != nil {
		return t
	}
	t := tensor.MustFromSlice(b, copyShape(shape)...)
	if g.books.tensors == nil || len(g.books.tensors) >= maxCachedTensors {
		// New shapes keep coming (multi-scale training): start over
		// rather than grow without bound.
		g.books.tensors = make(map[tensorKey]*tensor.Tensor)
	}
	g.books.tensors[key] = t
	return t
}

// numel is tensor.Numel without letting shape escape (it panics the same
// way on a negative dimension, with a copy of the shape in the message).
func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("nn: negative dimension in shape %v", copyShape(shape)))
		}
		n *= d
	}
	return n
}

// copyShape returns a copy of shape. lib/tensor's constructors keep their
// shape argument reachable (error messages), which would move the
// variadic array of every newTensorNoZero(n, c) call to the heap; handing
// them a copy keeps that array on the caller's stack, and the copy is
// made only when a tensor is really built (not on a cache hit).
func copyShape(shape []int) []int { return append([]int(nil), shape...) }

// tensorKey identifies a graph tensor by what it is: its buffer (first
// element and length) and its shape. Two tensors with the same key are
// indistinguishable (a Tensor is only a buffer and a shape, neither of
// which changes), so a graph hands out the one an earlier graph made for
// the same buffer and shape instead of a new struct: in a steady training
// loop the arena gives each op the buffer it had last step, and the
// tensors stop allocating.
type tensorKey struct {
	data  *float32
	n     int
	dims  int
	shape [6]int
}

// maxCachedTensors bounds a bookkeeping set's tensor cache.
const maxCachedTensors = 8192

// makeTensorKey returns b and shape's key, or false when they have none
// (empty, or more than 6 dimensions).
func makeTensorKey(b []float32, shape []int) (tensorKey, bool) {
	if len(b) == 0 || len(shape) > 6 {
		return tensorKey{}, false
	}
	k := tensorKey{data: &b[0], n: len(b), dims: len(shape)}
	copy(k.shape[:], shape)
	return k, true
}

// newInt32s returns n int32 values with undefined contents that g owns
// until Release: with an arena they live in a float32 buffer from it
// (same size and alignment, no pointers), so per-pass index arrays such
// as max-pool argmax positions stop allocating in a training loop.
func (g *Graph) newInt32s(n int) []int32 {
	if g.arena == nil {
		return make([]int32, n)
	}
	b := graphScratch{g}.Get(n)
	if n == 0 {
		return []int32{}
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// newInts and newFloat64s are newInt32s for 8-byte values (a loss's
// copied indices, its saved probabilities): with an arena they live in a
// float32 buffer from it, two slots each, when that buffer is 8-byte
// aligned (else, and without an arena, in a new slice).
func (g *Graph) newInts(n int) []int {
	if p := g.new8(n); p != nil {
		return unsafe.Slice((*int)(p), n)
	}
	return make([]int, n)
}

func (g *Graph) newFloat64s(n int) []float64 {
	if p := g.new8(n); p != nil {
		return unsafe.Slice((*float64)(p), n)
	}
	return make([]float64, n)
}

// new8 returns the start of n 8-byte slots from g's arena (owned until
// Release), or nil.
func (g *Graph) new8(n int) unsafe.Pointer {
	if g.arena == nil || n == 0 || unsafe.Sizeof(int(0)) != 8 {
		return nil
	}
	b := graphScratch{g}.Get(2 * n)
	p := unsafe.Pointer(unsafe.SliceData(b))
	if uintptr(p)%8 != 0 {
		graphScratch{g}.Put(b)
		return nil
	}
	return p
}

// scratch returns what kernels use for temporary buffers: with an arena,
// the graph's dead buffers first (best fit), then the arena's.
func (g *Graph) scratch() Scratch {
	if g.arena == nil {
		return heapScratch{}
	}
	return graphScratch{g}
}

// graphScratch lends kernels the graph's spare buffers: a temporary (an
// im2col matrix, a masked gradient) can live in memory a dead value or
// gradient of another size left, and the next temporary in its. Buffers
// it takes from the arena belong to the graph until Release.
type graphScratch struct{ g *Graph }

func (s graphScratch) Get(n int) []float32 {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if b := g.spare.take(n); b != nil {
		return b
	}
	b := g.arena.Get(n)
	g.owned = append(g.owned, b)
	return b
}

func (s graphScratch) Put(b []float32) {
	s.g.mu.Lock()
	s.g.spare.put(b)
	s.g.mu.Unlock()
}

// Release gives every buffer g allocated back to its arena. The values and
// gradients of g's Vars (not those of Params) must not be used afterwards:
// copy what you keep first. Without an arena Release only drops the tape.
func (g *Graph) Release() {
	if g.released {
		return
	}
	g.released = true
	g.hostSync() // queued operations may still use the buffers going back
	for _, b := range g.owned {
		g.arena.Put(b)
	}
	if b := g.books; b != nil {
		// Keep the grown backing arrays for the next graph.
		b.tape, b.owned, b.spare = g.tape, g.owned, g.spare
		b.reset()
		g.arena.putBooks(b)
		g.books = nil
	}
	g.owned = nil
	g.spare = nil
	g.tape = nil
}

// Input wraps t as a constant: no gradient is computed for it.
func (g *Graph) Input(t *tensor.Tensor) *Var {
	v := g.newVar()
	v.Value, v.g = t, g
	return v
}

// Leaf wraps t as a variable whose gradient Backward computes (into the
// returned Var's Grad) when requiresGrad is set and g records.
func (g *Graph) Leaf(t *tensor.Tensor, requiresGrad bool) *Var {
	v := g.newVar()
	v.Value, v.requiresGrad, v.g = t, requiresGrad && g.grad, g
	return v
}

// Param wraps a parameter. When g records and p is trainable, Backward
// accumulates into p.Grad (allocated on first use), as PyTorch does:
// call ZeroGrad between steps. A parameter no recording graph has touched
// keeps a nil Grad, which optimisers skip.
//
// The first-use gradient is ordinary Go memory, except under an arena made
// by NewArenaWith: then it comes from that arena's allocator (a device
// backend's memory) and, unlike the arena's buffers, is never recycled:
// it belongs to the parameter, and whoever owns the allocator frees it
// (lib/fasterrcnn's ReleaseDevice does).
func (g *Graph) Param(p *Param) *Var {
	v := g.newVar()
	v.Value, v.g = p.Value, g
	if g.grad && p.Trainable {
		if p.Grad == nil {
			p.Grad = g.newParamGrad(p.Value.Shape()...)
		}
		v.Grad = p.Grad
		v.requiresGrad = true
	}
	return v
}

// newParamGrad returns a zeroed gradient tensor for a parameter: from the
// allocator of g's device arena when it has one, else Go memory.
func (g *Graph) newParamGrad(shape ...int) *tensor.Tensor {
	if g.arena == nil || g.arena.alloc == nil {
		return tensor.New(shape...)
	}
	b := g.arena.alloc(tensor.Numel(shape))
	clear(b)
	return tensor.MustFromSlice(b, shape...)
}

// Op is the extension hook for differentiable operations defined outside
// this package (RoIAlign, detection losses). The caller computes out from
// the inputs' values itself; Op wraps it as a Var and, when g records and
// any input requires a gradient, remembers backward. During Backward,
// backward receives the gradient with respect to out and adds the gradient
// with respect to each input i into gradIns[i] (nil for inputs that need
// none). Inputs may be nil (an absent bias).
//
// Example (y = 2x, elementwise):
//
//	out := g.NewTensor(x.Shape()...)
//	for i, v := range x.Value.Data() {
//		out.Data()[i] = 2 * v
//	}
//	y := g.Op(out, []*nn.Var{x}, func(gy *tensor.Tensor, gin []*tensor.Tensor) {
//		if gin[0] != nil {
//			for i, d := range gy.Data() {
//				gin[0].Data()[i] += 2 * d
//			}
//		}
//	})
func (g *Graph) Op(out *tensor.Tensor, inputs []*Var, backward BackwardFunc) *Var {
	if backward == nil || !g.records(inputs) {
		return g.constant(out)
	}
	return g.push(out, inputs, backward, nil)
}

// viewOp records out, a view of x's data under another shape (a reshape):
// its gradient is x's gradient reshaped, passed on without a copy when it
// is the first to reach x.
func (g *Graph) viewOp(out *tensor.Tensor, x *Var) *Var {
	v := g.Op(out, g.varList(x), func(gy *tensor.Tensor, gin []*tensor.Tensor) {
		dx := gin[0].Data()
		for i, d := range gy.Data() {
			dx[i] += d
		}
	})
	if n := len(g.tape); v.requiresGrad && n > 0 && g.tape[n-1].out == v {
		g.tape[n-1].view = true
	}
	return v
}

// Backward computes the gradient of loss (a one-element tensor) with respect
// to every recorded value, running the recorded backward functions in
// reverse order with a seed of 1. Parameter gradients accumulate into
// Param.Grad. A graph can be differentiated once.
//
// With an arena (WithArena), the gradients of intermediate values (outputs
// of ops, loss excepted) are recycled as soon as they have been propagated,
// so their Grad is nil afterwards; parameters, leaves and the loss keep
// theirs. Without an arena every Var keeps its gradient.
func (g *Graph) Backward(loss *Var) error {
	switch {
	case loss == nil:
		return fmt.Errorf("%w: nil loss", ErrNoGrad)
	case !g.grad:
		return fmt.Errorf("%w: inference graph records nothing", ErrNoGrad)
	case g.done:
		return fmt.Errorf("%w: Backward already ran on this graph", ErrNoGrad)
	case loss.g != g:
		return fmt.Errorf("%w: loss belongs to another graph", ErrNoGrad)
	case loss.Value.Len() != 1:
		return fmt.Errorf("nn: Backward: loss must have one element, has shape %v", loss.Value.Shape())
	case !loss.requiresGrad:
		return fmt.Errorf("%w: loss does not depend on a trainable value", ErrNoGrad)
	}
	g.done = true
	if loss.Grad == nil {
		loss.Grad = g.newZeroed(loss.Value.Shape()...)
	}
	g.hostSync()
	loss.Grad.Data()[0] += 1
	var frees []valueFree
	if g.eager && g.arena != nil {
		frees = g.planValueFrees(loss)
	}
	var gradIns []*tensor.Tensor
	if g.books != nil {
		gradIns = g.books.gradIns[:0]
		defer func() { g.books.gradIns = gradIns[:0] }()
	}
	for i := len(g.tape) - 1; i >= 0; i-- {
		// Values first touched by a record after i are dead: every
		// record that could read them has run.
		for len(frees) > 0 && frees[len(frees)-1].at > i {
			g.spare.put(frees[len(frees)-1].buf)
			frees = frees[:len(frees)-1]
		}
		r := g.tape[i]
		if r.out.Grad == nil {
			continue // nothing downstream used this value
		}
		if r.view && r.out != loss && g.arena != nil {
			if in := r.inputs[0]; in.RequiresGrad() && in.Grad == nil && r.out.Grad.Len() == in.Value.Len() {
				// The first gradient to reach the input: hand it the
				// output's buffer under the input's shape.
				in.Grad = g.tensorOf(r.out.Grad.Data(), in.Value.Shape())
				r.out.Grad = nil
				continue
			}
		}
		gradIns = gradIns[:0]
		for _, in := range r.inputs {
			if !in.RequiresGrad() {
				gradIns = append(gradIns, nil)
				continue
			}
			if in.Grad == nil {
				in.Grad = g.newZeroed(in.Value.Shape()...)
			}
			gradIns = append(gradIns, in.Grad)
		}
		if r.op != nil {
			if !onDevice(r.op, g.backend) {
				g.hostSync() // host loops read and write the gradients
			}
			r.op.backward(r.out.Grad, gradIns)
		} else {
			g.hostSync()
			r.backward(r.out.Grad, gradIns)
		}
		if g.arena != nil && r.out != loss {
			// Every consumer of r.out comes later on the tape and has
			// run: its gradient is complete and now dead. Recycle it for
			// the gradients still to come (PyTorch frees them likewise),
			// which lowers the peak memory of a training step.
			g.spare.put(r.out.Grad.Data())
			r.out.Grad = nil
		}
	}
	return nil
}

// valueFree is a value buffer Backward may recycle once record at has run.
type valueFree struct {
	at  int
	buf []float32
}

// planValueFrees lists, in increasing tape order, the buffers Backward can
// recycle and after which record. A buffer qualifies when the graph owns it
// (it came from the arena), some recorded op produced it (so it did not
// exist before that op: no earlier backward function can have captured
// it) and it is not the loss's; it dies once the first record on the tape
// that reads or writes it (as an input, an output, or a view of either
// starting at the same element) has run backward, since every later
// record has run by then.
func (g *Graph) planValueFrees(loss *Var) []valueFree {
	b := g.books
	if b == nil {
		b = &graphBooks{}
	}
	if b.ownedAt == nil {
		b.ownedAt = make(map[*float32][]float32, len(g.owned))
		b.first = make(map[*float32]int, len(g.tape))
		b.produced = make(map[*float32]bool, len(g.tape))
	}
	owned, first, produced := b.ownedAt, b.first, b.produced
	for _, b := range g.owned {
		if len(b) > 0 {
			owned[&b[0]] = b
		}
	}
	note := func(v *Var, i int) *float32 {
		if v == nil || v.Value == nil || v.Value.Len() == 0 {
			return nil
		}
		p := &v.Value.Data()[0]
		if _, seen := first[p]; !seen {
			first[p] = i
		}
		return p
	}
	for i, r := range g.tape {
		for _, in := range r.inputs {
			note(in, i)
		}
		if p := note(r.out, i); p != nil {
			produced[p] = true
		}
	}
	var keep *float32
	if loss.Value.Len() > 0 {
		keep = &loss.Value.Data()[0]
	}
	frees := b.frees[:0]
	for p := range produced {
		b, ok := owned[p]
		if !ok || p == keep {
			continue
		}
		frees = append(frees, valueFree{at: first[p], buf: b})
	}
	slices.SortFunc(frees, func(a, b valueFree) int { return a.at - b.at })
	if g.books != nil {
		g.books.frees = frees
	}
	return frees
}
