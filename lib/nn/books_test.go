package nn

import (
	"math/rand"
	"runtime"
	"slices"
	"testing"
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
// their loops over the worker pool (BatchNorm statistics and affine map,
// max pooling and its backward, the elementwise add) allocate nothing
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
	}
	for _, k := range kernels {
		k.run()
		const runs = 20
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			k.run()
		}
		runtime.ReadMemStats(&after)
		// A few objects of the runtime's own (goroutine parking records
		// after a collection) are tolerated; one per call is ours.
		if got := after.Mallocs - before.Mallocs; got >= runs/2 {
			t.Errorf("%s: %d allocations in %d calls, want none", k.name, got, runs)
		}
	}
}

// addInto runs add's forward loop (the pooled job) on a and b into a.
func (CPU) addInto(a, b *Var) {
	ad := a.Value.Data()
	runPooled(len(ad)/4096+1, &addJobs, addJob{a: ad, b: b.Value.Data(), out: ad})
}
