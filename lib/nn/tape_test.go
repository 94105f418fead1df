package nn

import (
	"math/rand"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/tensor"
)

// tapeNet is a small network that records every op kind with a backward
// struct (see graphOps) plus a reshape and a closure-based Op.
type tapeNet struct {
	conv1, conv2 *Conv2d
	bn1, bn2     *BatchNorm2d
	fc           *Linear
	x            *tensor.Tensor
	boxTarget    *tensor.Tensor
	labels       []int
	targets      []float32
	ps           []*Param
}

func newTapeNet(t *testing.T) *tapeNet {
	rng := rand.New(rand.NewSource(9))
	n := &tapeNet{x: randTensor(rng, 0, 2, 2, 8, 8), boxTarget: randTensor(rng, 0, 2, 3),
		labels: []int{2, 0}, targets: []float32{1, 0, 0, 1, 1, 0}}
	var err error
	check := func() {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	n.conv1, err = NewConv2d("c1", 2, 4, 3, 1, 1, true, rng)
	check()
	n.conv2, err = NewConv2d("c2", 4, 4, 3, 1, 1, false, rng)
	check()
	n.bn1, err = NewBatchNorm2d("b1", 4)
	check()
	n.bn2, err = NewBatchNorm2d("b2", 4)
	check()
	n.fc, err = NewLinear("fc", 4, 3, true, rng)
	check()
	for _, l := range []interface{ Params() []*Param }{n.conv1, n.conv2, n.bn1, n.bn2, n.fc} {
		n.ps = append(n.ps, l.Params()...)
	}
	return n
}

// step runs one forward and backward pass on a new graph (with arena when
// not nil) and returns the input's gradient; the graph is released.
func (n *tapeNet) step(t *testing.T, arena *Arena) []float32 {
	ZeroGrads(n.ps)
	g := NewGraph()
	if arena != nil {
		g.WithArena(arena)
	}
	defer g.Release()
	must := func(v *Var, err error) *Var {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	x := g.Leaf(n.x, true)
	h1 := must(n.bn1.ForwardReLU(g, must(n.conv1.Forward(g, x))))
	h := must(n.bn2.Forward(g, must(n.conv2.Forward(g, h1))))
	h = must(AddReLU(g, h, h1))
	h = must(MaxPool2d{Kernel: 3, Stride: 2, Padding: 1}.Forward(g, h))
	h = must(AdaptiveAvgPool2d1{}.Forward(g, h))
	h = must(Flatten{}.Forward(g, h))
	logits := must(n.fc.Forward(g, h))
	sel := must(IndexSelect(g, logits, []int{1, 0, 1}))
	ce := must(CrossEntropy(g, logits, n.labels))
	bce := must(BCEWithLogits(g, logits, n.targets, []int{0, 2, 3, 5}))
	sl1 := must(SmoothL1(g, Sigmoid(g, logits), n.boxTarget, []int{1}, 1.0/9))
	prod := must(Mul(g, logits, logits))
	// A closure-based op (the API for code outside the package): y = 2x.
	twice := g.NewTensor(sel.Shape()...)
	for i, v := range sel.Value.Data() {
		twice.Data()[i] = 2 * v
	}
	dbl := g.Op(twice, g.varList(sel), func(gy *tensor.Tensor, gin []*tensor.Tensor) {
		for i, d := range gy.Data() {
			gin[0].Data()[i] += 2 * d
		}
	})
	loss := must(Add(g, ce, bce))
	loss = must(Add(g, loss, sl1))
	loss = must(Add(g, loss, MulScalar(g, Mean(g, prod), 0.5)))
	loss = must(Add(g, loss, Sum(g, ReLU(g, dbl))))
	if err := g.Backward(loss); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), x.Grad.Data()...)
}

// TestRecordedOpsReuseBackwardStructs checks that the ops' backward
// structs, reused across graphs through an arena's bookkeeping sets, give
// the gradients of a graph without an arena, step after step, and that a
// steady-state step then allocates nothing but the Graph itself.
func TestRecordedOpsReuseBackwardStructs(t *testing.T) {
	n := newTapeNet(t)
	// BatchNorm's running statistics change every step, its output does
	// not (batch statistics): the same input gives the same gradients.
	want := n.step(t, nil)
	arena := NewArena()
	for i := range 3 {
		got := n.step(t, arena)
		if d := relL2(got, want); d > 1e-6 {
			t.Fatalf("step %d with an arena: input gradient differs from the arena-free graph's by %.3g", i, d)
		}
	}
	// The count needs the Go kernels: OpenBLAS, oneDNN and oneDNN's
	// convolutions allocate per call (their argument lists).
	if b := compute.Backend(); !strings.HasPrefix(b, "Go") {
		t.Logf("GEMMs run on %s: allocations not counted", b)
		return
	}
	if c := strings.ToLower(os.Getenv(compute.EnvConv)); c == "onednn" || c == "dnnl" || c == "auto" {
		t.Logf("%s=%s: allocations not counted", compute.EnvConv, c)
		return
	}
	// Not testing.AllocsPerRun: it sets GOMAXPROCS to 1, which changes
	// how the kernels split their work.
	const steps = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range steps {
		n.step(t, arena)
	}
	runtime.ReadMemStats(&after)
	// One allocation per step is the Graph, one the returned gradient;
	// a few runtime objects after a collection are tolerated. One more
	// per recorded op (there are 20) is what this test guards against.
	per := float64(after.Mallocs-before.Mallocs) / steps
	t.Logf("steady-state step: %.1f heap allocations", per)
	if per > 4 {
		t.Errorf("a steady-state step makes %.1f heap allocations, want at most 4 (the Graph, the returned gradient, the runtime's)", per)
	}
}
