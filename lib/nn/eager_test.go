package nn

import (
	"math"
	"math/rand"
	"testing"
)

// TestEagerReleaseSameGradients runs a network that mixes views (Reshape),
// copies (Permute, Concat, IndexSelect), in-graph constants, BatchNorm,
// pooling and losses with and without WithEagerRelease and checks that
// every gradient is bit-identical, that the loss keeps its value, and that
// eager release makes the arena allocate less.
func TestEagerReleaseSameGradients(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	conv, err := NewConv2d("c", 3, 6, 3, 1, 1, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	bn, err := NewBatchNorm2d("bn", 6)
	if err != nil {
		t.Fatal(err)
	}
	mid, err := NewConv2d("m", 6, 6, 3, 1, 1, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	conv2, err := NewConv2d("d", 6, 4, 3, 2, 1, false, rng)
	if err != nil {
		t.Fatal(err)
	}
	lin, err := NewLinear("l", 4*4*4, 5, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	params := append(append(append(append(conv.Params(), bn.Params()...), mid.Params()...), conv2.Params()...), lin.Params()...)
	x := randTensor(rng, 0, 2, 3, 16, 16)
	must := func(v *Var, err error) *Var {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	run := func(g *Graph) (loss float32, grads [][]float32, dx []float32) {
		ZeroGrads(params)
		xv := g.Leaf(x, true)
		h := must(bn.ForwardReLU(g, must(conv.Forward(g, xv))))
		for range 2 { // same-sized layers: later values can hold earlier gradients
			h = ReLU(g, must(mid.Forward(g, h)))
		}
		h = must(MaxPool2d{Kernel: 2, Stride: 2}.Forward(g, h)) // (2,6,8,8)
		h = must(conv2.Forward(g, h))                           // (2,4,4,4)
		p := must(Permute(g, h, 0, 2, 3, 1))                    // (2,4,4,4) copy
		flat := must(Reshape(g, p, 2, -1))                      // view of p
		both := must(Concat(g, flat, MulScalar(g, flat, 0.5)))  // (4,64)
		sel := must(IndexSelect(g, both, []int{3, 0, 2}))       // (3,64)
		logits := must(lin.Forward(g, sel))                     // (3,5)
		ce := must(CrossEntropy(g, logits, []int{1, 4, 0}))
		sq := Sum(g, must(Mul(g, Sigmoid(g, logits), logits)))
		total := must(Add(g, ce, MulScalar(g, sq, 0.1)))
		if err := g.Backward(total); err != nil {
			t.Fatal(err)
		}
		for _, q := range params {
			grads = append(grads, append([]float32(nil), q.Grad.Data()...))
		}
		return total.Value.Data()[0], grads, append([]float32(nil), xv.Grad.Data()...)
	}
	// Without an arena nothing is recycled or aliased: the reference.
	lRef, gRef, dxRef := run(NewGraph())
	allocated := func(eager bool) (float32, [][]float32, []float32, int) {
		n := 0
		a := NewArenaWith(func(k int) []float32 { n += k; return make([]float32, k) })
		var loss float32
		var grads [][]float32
		var dx []float32
		for range 2 { // the second pass runs on recycled buffers
			g := NewGraph().WithArena(a)
			if eager {
				g.WithEagerRelease()
			}
			loss, grads, dx = run(g)
			g.Release()
		}
		return loss, grads, dx, n
	}
	l0, g0, dx0, n0 := allocated(false)
	l1, g1, dx1, n1 := allocated(true)
	if math.Float32bits(l0) != math.Float32bits(l1) {
		t.Errorf("loss %v with eager release, %v without", l1, l0)
	}
	for i := range g0 {
		for j := range g0[i] {
			if math.Float32bits(g0[i][j]) != math.Float32bits(g1[i][j]) {
				t.Fatalf("param %s grad[%d] = %v with eager release, %v without", params[i].Name, j, g1[i][j], g0[i][j])
			}
		}
	}
	for j := range dx0 {
		if math.Float32bits(dx0[j]) != math.Float32bits(dx1[j]) {
			t.Fatalf("input grad[%d] = %v with eager release, %v without", j, dx1[j], dx0[j])
		}
	}
	// A view's gradient handed on without a copy equals 0 + gy: the same
	// numbers (a -0 may become +0, hence == rather than bits).
	if l0 != lRef {
		t.Errorf("loss %v with an arena, %v without", l0, lRef)
	}
	for i := range gRef {
		for j := range gRef[i] {
			if g0[i][j] != gRef[i][j] {
				t.Fatalf("param %s grad[%d] = %v with an arena, %v without", params[i].Name, j, g0[i][j], gRef[i][j])
			}
		}
	}
	for j := range dxRef {
		if dx0[j] != dxRef[j] {
			t.Fatalf("input grad[%d] = %v with an arena, %v without", j, dx0[j], dxRef[j])
		}
	}
	if n1 >= n0 {
		t.Errorf("eager release allocated %d floats, plain %d: want fewer", n1, n0)
	}
	t.Logf("arena allocated %d floats with eager release, %d without", n1, n0)
}

func TestArenaBestFit(t *testing.T) {
	a := NewArena()
	b := a.Get(100)
	a.Put(b[:10]) // the whole capacity comes back
	tests := []struct {
		name  string
		n     int
		reuse bool
	}{
		{"larger than any free buffer", 101, false},
		{"less than half: not worth it", 49, false},
		{"fits", 80, true},
	}
	for _, tc := range tests {
		got := a.Get(tc.n)
		if len(got) != tc.n {
			t.Fatalf("%s: Get(%d) has length %d", tc.name, tc.n, len(got))
		}
		if same := &got[0] == &b[0]; same != tc.reuse {
			t.Errorf("%s: Get(%d) reused the 100-element buffer: %v, want %v", tc.name, tc.n, same, tc.reuse)
		}
	}
	if h := a.Held(); h != 0 {
		t.Errorf("Held %d after taking everything back out", h)
	}
}

// TestArenaAcrossShapes checks that a pass on a slightly smaller batch runs
// on the buffers the larger one left (multi-scale training must not grow
// the arena by every shape).
func TestArenaAcrossShapes(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	conv, err := NewConv2d("c", 3, 8, 3, 1, 1, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	allocated := 0
	a := NewArenaWith(func(k int) []float32 { allocated += k; return make([]float32, k) })
	pass := func(hw int) {
		g := NewGraph().WithArena(a).WithEagerRelease()
		y, err := conv.Forward(g, g.Leaf(randTensor(rng, 0, 2, 3, hw, hw), true))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Backward(Sum(g, ReLU(g, y))); err != nil {
			t.Fatal(err)
		}
		g.Release()
	}
	pass(20)
	first := allocated
	for _, hw := range []int{18, 16, 19, 20} {
		pass(hw)
	}
	if allocated != first {
		t.Errorf("passes on 16..19 pixel batches allocated %d more floats after a 20 pixel pass took %d", allocated-first, first)
	}
}

func TestNewInt32sComeFromTheArena(t *testing.T) {
	allocated := 0
	a := NewArenaWith(func(k int) []float32 { allocated += k; return make([]float32, k) })
	for pass := range 3 {
		g := NewGraph().WithArena(a)
		idx := g.newInt32s(1000)
		for i := range idx {
			idx[i] = int32(-i) // every bit pattern must survive
		}
		for i, v := range idx {
			if v != int32(-i) {
				t.Fatalf("pass %d: idx[%d] = %d", pass, i, v)
			}
		}
		if e := g.newInt32s(0); len(e) != 0 {
			t.Fatalf("newInt32s(0) has length %d", len(e))
		}
		g.Release()
	}
	if allocated != 1000 {
		t.Errorf("three passes allocated %d arena elements, want 1000 (one buffer, reused)", allocated)
	}
	if got := NewGraph().newInt32s(5); len(got) != 5 {
		t.Errorf("without an arena: length %d", len(got))
	}
}
