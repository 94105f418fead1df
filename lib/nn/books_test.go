package nn

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/detlab/detlab/internal/allocs"
	"github.com/detlab/detlab/lib/tensor"
)

// TestGraphBooksRecycled checks the arena's recycling of graph bookkeeping
// (Var structs, input lists, tape): consecutive graphs on one arena get the
// same results as graphs without one, a released graph's Vars serve the
// next graph, and two graphs alive at once on one arena never share a Var.
func TestGraphBooksRecycled(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	lin, err := NewLinear("l", 6, 5, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(rng, 0, 4, 6)
	other := randTensor(rng, 0, 4, 5)
	// pass builds y = relu(lin(x)) + other, loss sum(y*y), and returns
	// the graph (not yet released), the loss and the weight gradient.
	pass := func(arena *Arena) (*Graph, []*Var, float32, []float32) {
		ZeroGrads(lin.Params())
		g := NewGraph()
		if arena != nil {
			g.WithArena(arena)
		}
		xv := g.Input(x)
		h, err := lin.Forward(g, xv)
		if err != nil {
			t.Fatal(err)
		}
		y, err := Add(g, ReLU(g, h), g.Input(other))
		if err != nil {
			t.Fatal(err)
		}
		sq, err := Mul(g, y, y)
		if err != nil {
			t.Fatal(err)
		}
		loss := Sum(g, sq)
		value := loss.Value.Data()[0]
		if err := g.Backward(loss); err != nil {
			t.Fatal(err)
		}
		return g, []*Var{xv, h, y, sq, loss}, value, slices.Clone(lin.Weight.Grad.Data())
	}
	g0, _, loss0, dw0 := pass(nil)
	g0.Release()
	arena := NewArena()
	var firstVars []*Var
	for i := range 3 {
		g, vars, loss, dw := pass(arena)
		if loss != loss0 || !slices.Equal(dw, dw0) {
			t.Fatalf("pass %d on the arena: loss %v, want %v; weight gradients equal: %v", i, loss, loss0, slices.Equal(dw, dw0))
		}
		if i == 0 {
			firstVars = vars
		} else if vars[0] != firstVars[0] {
			t.Errorf("pass %d: the released graph's Vars were not reused", i)
		}
		g.Release()
		// Until the next graph reuses them, Vars keep what they held
		// (nothing is cleared under a caller reading the loss late).
		if v := vars[4].Value; v == nil || v.Data()[0] != loss {
			t.Errorf("pass %d: the loss Var was cleared by Release", i)
		}
	}
	// Two live graphs on one arena.
	ga, va, _, _ := pass(arena)
	gb, vb, _, _ := pass(arena)
	for _, v := range va {
		if slices.Contains(vb, v) {
			t.Fatal("two live graphs on one arena share a Var")
		}
	}
	ga.Release()
	gb.Release()
}

// TestGraphBooksChunks fills more Vars and input lists than one chunk
// holds, twice on one arena, and checks every Var is distinct and keeps
// its value.
func TestGraphBooksChunks(t *testing.T) {
	arena := NewArena()
	x := randTensor(rand.New(rand.NewSource(1)), 0, 3)
	for pass := range 2 {
		g := NewGraph().WithArena(arena)
		v := g.Leaf(x, true)
		seen := map[*Var]bool{v: true}
		const n = 3*varChunk + 7
		for i := 0; i < n; i++ {
			v = MulScalar(g, v, 1)
			if seen[v] {
				t.Fatalf("pass %d: Var %d handed out twice", pass, i)
			}
			seen[v] = true
		}
		if err := g.Backward(Sum(g, v)); err != nil {
			t.Fatal(err)
		}
		if g.tape[0].inputs[0] == nil || len(g.tape) != n+1 {
			t.Fatalf("pass %d: tape of %d records, want %d", pass, len(g.tape), n+1)
		}
		g.Release()
	}
}

// TestKernelJobsAllocateNothing checks that the CPU kernels that split
// their loops over the worker pool (BatchNorm statistics, affine map and
// backward, max pooling and its backward, the elementwise add, im2col and
// col2im) allocate nothing
// once warm: their loop bodies are pooled jobs, not closures.
func TestKernelJobsAllocateNothing(t *testing.T) {
	if numWorkers() < 2 {
		t.Skip("one worker: the kernels run inline")
	}
	rng := rand.New(rand.NewSource(2))
	const n, c, h, w = 2, 8, 16, 16
	x := randTensor(rng, 0, n, c, h, w).Data()
	y := make([]float32, len(x))
	mean, variance := make([]float64, c), make([]float64, c)
	scale, shift := make([]float32, c), make([]float32, c)
	geo := PoolGeom{Planes: n * c, H: h, W: w, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, OH: 8, OW: 8}
	py, arg := make([]float32, n*c*64), make([]int32, n*c*64)
	cg := ConvGeom{N: 1, C: c, H: h, W: w, K: 4, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: h, OW: w}
	col, dx := make([]float32, c*9*h*w), make([]float32, len(x))
	g := NewGraph().WithArena(NewArena())
	a, b := g.Input(randTensor(rng, 0, 3, 4096)), g.Input(randTensor(rng, 0, 3, 4096))
	kernels := []struct {
		name string
		run  func()
	}{
		{"ChannelStats", func() { CPU{}.ChannelStats(x, n, c, h*w, mean, variance) }},
		{"ChannelAffine", func() { CPU{}.ChannelAffine(x, y, n, c, h*w, scale, shift, true) }},
		{"MaxPool2d", func() { CPU{}.MaxPool2d(geo, x, py, arg) }},
		{"MaxPool2dBackward", func() { CPU{}.MaxPool2dBackward(geo, py, y, arg) }},
		{"add", func() { CPU{}.addInto(a, b) }},
		{"im2col", func() { im2col(cg, x, col) }},
		{"col2im", func() { col2im(cg, col, y) }},
		{"bnBackward", func() { bnBackward(x, y, dx, scale, shift, n, c, h*w, mean, variance, scale, true) }},
	}
	for _, k := range kernels {
		k.run()
		const runs = 20
		// The fewest of three rounds: on a loaded machine a pool worker
		// may not be back at its queue in time, and the chunk then gets
		// a goroutine of its own (allocations that are not the kernel's).
		got, _ := allocs.Fewest(3, runs, k.run)
		// A few objects of the runtime's own (goroutine parking records
		// after a collection) are tolerated; one per call is ours.
		if got >= runs/2 {
			t.Errorf("%s: %d allocations in %d calls, want none", k.name, got, runs)
		}
	}
}

// addInto runs add's forward loop (the pooled job) on a and b into a.
func (CPU) addInto(a, b *Var) {
	ad := a.Value.Data()
	runPooled(len(ad)/4096+1, &addJobs, addJob{a: ad, b: b.Value.Data(), out: ad})
}

// TestGraphTensorsReused checks the bookkeeping's tensor cache: in a
// steady loop on one arena the ops get buffers earlier passes had, and
// with them the Tensor structs made for those buffers and shapes (the same
// values), so after warm-up a pass makes no new tensor; results are
// unchanged, and a buffer under another shape gets its own tensor.
func TestGraphTensorsReused(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	x := randTensor(rng, 0, 8, 16)
	arena := NewArena()
	pass := func() (loss float32, cached int) {
		g := NewGraph().WithArena(arena)
		books := g.books
		v := g.Leaf(x, true)
		a := ReLU(g, MulScalar(g, v, 2))
		b, err := Mul(g, a, v)
		if err != nil {
			t.Fatal(err)
		}
		l := Sum(g, b)
		loss = l.Value.Data()[0]
		if err := g.Backward(l); err != nil {
			t.Fatal(err)
		}
		g.Release()
		return loss, len(books.tensors)
	}
	var losses []float32
	var sizes []int
	for range 5 {
		l, n := pass()
		losses, sizes = append(losses, l), append(sizes, n)
	}
	if slices.Min(losses) != slices.Max(losses) {
		t.Fatalf("losses differ across passes: %v", losses)
	}
	if sizes[4] == 0 || sizes[4] != sizes[3] {
		t.Errorf("tensors cached after each pass: %v; want a steady nonzero count (no new tensor once warm)", sizes)
	}
	g := NewGraph().WithArena(NewArena())
	a := g.newTensorNoZero(4, 6)
	buf := a.Data()
	graphScratch{g}.Put(buf)
	b := g.newTensorNoZero(6, 4) // the same buffer, another shape
	if &b.Data()[0] != &buf[0] {
		t.Skip("the arena did not hand the buffer back (nothing to check)")
	}
	if a == b || !slices.Equal(b.Shape(), []int{6, 4}) {
		t.Errorf("a buffer under a new shape got tensor %v, shape %v", a == b, b.Shape())
	}
	graphScratch{g}.Put(b.Data())
	if c := g.newTensorNoZero(4, 6); c != a {
		t.Errorf("the buffer under its first shape again: a new Tensor")
	}
}

// TestGraphTensorCacheBound fills the tensor cache past its bound (many
// shapes) and checks tensors stay right.
func TestGraphTensorCacheBound(t *testing.T) {
	arena := NewArena()
	g := NewGraph().WithArena(arena)
	for i := 1; i <= maxCachedTensors+10; i++ {
		want := []int{i%97 + 1, i%89 + 1, 1} // 8633 distinct shapes
		tt := g.newTensorNoZero(want...)
		if !slices.Equal(tt.Shape(), want) || tt.Len() != tensor.Numel(want) {
			t.Fatalf("tensor %d: shape %v, len %d", i, tt.Shape(), tt.Len())
		}
		graphScratch{g}.Put(tt.Data())
	}
	if n := len(g.books.tensors); n > maxCachedTensors {
		t.Errorf("tensor cache holds %d, bound %d", n, maxCachedTensors)
	}
	g.Release()
}

// TestLossesOnArenaMatch checks the losses whose saved indices and
// probabilities live in arena buffers (newInts, newFloat64s) against the
// same losses on a graph without an arena, over passes that recycle those
// buffers, and that the callers' index slices are copied, not kept.
func TestLossesOnArenaMatch(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	logits := randTensor(rng, 0, 6, 5)
	targets := randTensor(rng, 0, 6, 5)
	labels := []int{0, 4, 2, 2, 1, 3}
	run := func(arena *Arena) (vals, grads []float32) {
		g := NewGraph()
		if arena != nil {
			g.WithArena(arena)
		}
		x := g.Leaf(logits, true)
		idx, rows := []int{0, 3, 7, 29}, []int{1, 4}
		bce, err := BCEWithLogits(g, x, targets.Data(), idx)
		if err != nil {
			t.Fatal(err)
		}
		sl, err := SmoothL1(g, x, targets, rows, 1.0/9)
		if err != nil {
			t.Fatal(err)
		}
		ce, err := CrossEntropy(g, x, labels)
		if err != nil {
			t.Fatal(err)
		}
		idx[0], rows[0] = 5, 5 // the losses must have copied them
		s1, _ := Add(g, bce, sl)
		total, _ := Add(g, s1, ce)
		vals = []float32{bce.Value.Data()[0], sl.Value.Data()[0], ce.Value.Data()[0]}
		if err := g.Backward(total); err != nil {
			t.Fatal(err)
		}
		grads = slices.Clone(x.Grad.Data())
		g.Release()
		return vals, grads
	}
	wantV, wantG := run(nil)
	arena := NewArena()
	for pass := range 3 {
		v, gr := run(arena)
		if !slices.Equal(v, wantV) || !slices.Equal(gr, wantG) {
			t.Fatalf("pass %d on an arena: losses %v, want %v (gradients equal: %v)", pass, v, wantV, slices.Equal(gr, wantG))
		}
	}
}
