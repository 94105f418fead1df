package nn

import (
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
)

// elementwiseCPU is a CPU backend that also implements ElementwiseBackend
// and RoundingBackend (as lib/cuda's Backend does), with loops written
// from the interfaces' docs, and counts the calls.
type elementwiseCPU struct {
	CPU
	calls map[string]int
}

func newElementwiseCPU() *elementwiseCPU { return &elementwiseCPU{calls: map[string]int{}} }

func reluValue(v float32) float32 {
	if v > 0 || v != v {
		return v
	}
	return 0
}

func (b *elementwiseCPU) Add(a, c, y []float32, relu bool) {
	b.calls["Add"]++
	for i := range y {
		v := a[i] + c[i]
		if relu {
			v = reluValue(v)
		}
		y[i] = v
	}
}

func (b *elementwiseCPU) ReLU(x, y []float32) {
	b.calls["ReLU"]++
	for i := range y {
		y[i] = reluValue(x[i])
	}
}

func (b *elementwiseCPU) ReLUBackward(y, dy, dx []float32) {
	b.calls["ReLUBackward"]++
	for i := range dx {
		if y[i] > 0 {
			dx[i] += dy[i]
		}
	}
}

func (b *elementwiseCPU) Round(p Precision, dst, src []float32) {
	b.calls["Round"]++
	for i, v := range src {
		dst[i] = p.Round(v)
	}
}

// specialValues holds the values whose handling differs between careless
// ReLU implementations: NaN, signed zeros and infinities.
var specialValues = []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), 0,
	float32(math.Inf(1)), float32(math.Inf(-1)), -1.5, 2.25, 1e-40, -1e-40}

func elementwiseInput(rng *rand.Rand, n int) *tensor.Tensor {
	x := tensor.New(n)
	for i := range x.Data() {
		if i < len(specialValues) {
			x.Data()[i] = specialValues[i]
		} else {
			x.Data()[i] = float32(rng.NormFloat64())
		}
	}
	return x
}

func sameBits(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestElementwiseBackendUsed runs ReLU, Add, AddReLU (also with both
// operands the same Var) forward and backward on the CPU and on a backend
// with ElementwiseBackend: the backend gets the work, and every value and
// gradient is bit-identical to the host loops'.
func TestElementwiseBackendUsed(t *testing.T) {
	type op func(g *Graph, a, b *Var) (*Var, error)
	cases := []struct {
		name  string
		f     op
		calls map[string]int // backend calls for forward plus backward
	}{
		{"ReLU", func(g *Graph, a, _ *Var) (*Var, error) { return ReLU(g, a), nil }, map[string]int{"ReLU": 1, "ReLUBackward": 1}},
		{"Add", Add, map[string]int{"Add": 3}},
		{"AddReLU", AddReLU, map[string]int{"Add": 1, "ReLUBackward": 2}},
		{"Add(x, x)", func(g *Graph, a, _ *Var) (*Var, error) { return Add(g, a, a) }, map[string]int{"Add": 3}},
		{"AddReLU(x, x)", func(g *Graph, a, _ *Var) (*Var, error) { return AddReLU(g, a, a) }, map[string]int{"Add": 1, "ReLUBackward": 2}},
	}
	for _, n := range []int{0, 9, 10_001} {
		rng := rand.New(rand.NewSource(int64(n)))
		x, y, w := elementwiseInput(rng, n), elementwiseInput(rng, n), elementwiseInput(rng, n)
		for i := range w.Data() {
			w.Data()[i] = float32(rng.NormFloat64()) // finite: the upstream gradient
		}
		for _, c := range cases {
			run := func(be Backend) (out, ga, gb []float32) {
				g := NewGraph().WithBackend(be)
				a, b := g.Leaf(x.Clone(), true), g.Leaf(y.Clone(), true)
				v, err := c.f(g, a, b)
				if err != nil {
					t.Fatal(err)
				}
				p, err := Mul(g, v, g.Input(w))
				if err != nil {
					t.Fatal(err)
				}
				if err := g.Backward(Sum(g, p)); err != nil {
					t.Fatal(err)
				}
				grad := func(v *Var) []float32 {
					if v.Grad == nil {
						return nil
					}
					return v.Grad.Data()
				}
				return v.Value.Data(), grad(a), grad(b)
			}
			wantOut, wantA, wantB := run(CPU{})
			be := newElementwiseCPU()
			gotOut, gotA, gotB := run(be)
			for _, r := range []struct {
				what      string
				got, want []float32
			}{{"value", gotOut, wantOut}, {"grad a", gotA, wantA}, {"grad b", gotB, wantB}} {
				if i := sameBits(r.got, r.want); i >= 0 {
					t.Errorf("%s n=%d: %s differs from the host loops' at %d", c.name, n, r.what, i)
				}
			}
			if n == 0 {
				continue
			}
			for k, v := range c.calls {
				if be.calls[k] != v {
					t.Errorf("%s n=%d: %d %s calls on the backend, want %d (all: %v)", c.name, n, be.calls[k], k, v, be.calls)
				}
			}
		}
	}
}

// TestGraphRound checks Graph.round and roundAs: the backend's Round when
// it implements RoundingBackend, Precision.RoundSlice otherwise, with the
// same bits either way, in place or not; Float32 copies without a call.
func TestGraphRound(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	src := elementwiseInput(rng, 1000).Data()
	src[20], src[21] = 70000, -1e-6 // fp16 overflow and subnormal
	for _, p := range []Precision{Float32, BFloat16, Float16} {
		want := make([]float32, len(src))
		p.RoundSlice(want, src)
		for _, inPlace := range []bool{false, true} {
			be := newElementwiseCPU()
			for _, backend := range []Backend{CPU{}, be} {
				g := NewGraph().WithBackend(backend).WithAutocast(p)
				dst := make([]float32, len(src)+3)
				in := src
				if inPlace {
					dst = append([]float32(nil), src...)
					in = dst
				}
				g.round(dst, in)
				if i := sameBits(dst[:len(src)], want); i >= 0 {
					t.Errorf("%v on %s (in place %v): differs from RoundSlice at %d: %v, want %v", p, backend.Name(), inPlace, i, dst[i], want[i])
				}
				g2 := NewGraph().WithBackend(backend) // autocast off: roundAs follows its argument
				out := make([]float32, len(src))
				g2.roundAs(p, out, src)
				if i := sameBits(out, want); i >= 0 {
					t.Errorf("roundAs(%v) on %s differs at %d", p, backend.Name(), i)
				}
			}
			if wantCalls := map[bool]int{true: 0, false: 2}[p == Float32]; be.calls["Round"] != wantCalls {
				t.Errorf("%v: %d Round calls on the backend, want %d", p, be.calls["Round"], wantCalls)
			}
		}
	}
}

// TestParamGradFromDeviceArena checks where a parameter's first-use
// gradient lives: under an arena made by NewArenaWith it comes from the
// arena's allocator (zeroed even when the allocator hands out dirty
// memory) and stays out of the arena's recycling; otherwise it is Go
// memory; an untouched or untrainable parameter keeps a nil gradient.
func TestParamGradFromDeviceArena(t *testing.T) {
	for _, c := range []struct {
		name   string
		device bool
	}{{"NewArena", false}, {"NewArenaWith", true}} {
		t.Run(c.name, func(t *testing.T) {
			var allocated [][]float32
			arena := NewArena()
			if c.device {
				arena = NewArenaWith(func(n int) []float32 {
					b := make([]float32, n)
					for i := range b {
						b[i] = 7 // dirty memory: the gradient must still start at 0
					}
					allocated = append(allocated, b)
					return b
				})
			}
			used, untouched, frozen := NewParam("used", 2, 3), NewParam("untouched", 4), NewParam("frozen", 2, 3)
			frozen.Trainable = false
			for i := range used.Value.Data() {
				used.Value.Data()[i] = float32(i)
			}
			g := NewGraph().WithArena(arena)
			p, err := Mul(g, g.Param(used), g.Param(frozen))
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Backward(Sum(g, p)); err != nil {
				t.Fatal(err)
			}
			g.Release()
			if untouched.Grad != nil || frozen.Grad != nil {
				t.Errorf("untouched or frozen parameters got a gradient")
			}
			if used.Grad == nil {
				t.Fatal("no gradient for the used parameter")
			}
			for i, v := range used.Grad.Data() {
				if v != 0 { // d/d used of sum(used * frozen), frozen being zero
					t.Errorf("grad[%d] = %v, want 0", i, v)
				}
			}
			fromAlloc := false
			for _, b := range allocated {
				if &b[0] == &used.Grad.Data()[0] {
					fromAlloc = true
				}
			}
			if fromAlloc != c.device {
				t.Errorf("gradient from the arena's allocator: %v, want %v", fromAlloc, c.device)
			}
			// The gradient is the parameter's: the arena does not lend it out.
			for range 4 {
				b := arena.Get(used.Grad.Len())
				if &b[0] == &used.Grad.Data()[0] {
					t.Fatal("the arena lent out a parameter's gradient")
				}
			}
		})
	}
}

// bnBackendCPU is the CPU backend with BatchNormBackend (the host loop) and
// a call counter.
type bnBackendCPU struct {
	CPU
	calls int
}

func (b *bnBackendCPU) BatchNormBackward(x, dy, dx, dgamma, dbeta []float32, n, c, hw int, mean, invstd []float64, gamma []float32, train bool) {
	b.calls++
	bnBackward(x, dy, dx, dgamma, dbeta, n, c, hw, mean, invstd, gamma, train)
}

// TestBatchNormBackendUsed checks that BatchNorm2d's backward goes to a
// backend's BatchNormBackward when it has one (train and eval modes) with
// the same gradients as the host loop.
func TestBatchNormBackendUsed(t *testing.T) {
	for _, mode := range []BNMode{BNTrain, BNEval} {
		grads := func(b Backend) [][]float32 {
			bn, err := NewBatchNorm2d("bn", 3)
			if err != nil {
				t.Fatal(err)
			}
			bn.SetMode(mode)
			rng := rand.New(rand.NewSource(2))
			x := elementwiseInput(rng, 2*3*4*5)
			xt, _ := x.Reshape(2, 3, 4, 5)
			g := NewGraph().WithBackend(b)
			xv := g.Leaf(xt, true)
			y, err := bn.ForwardReLU(g, xv)
			if err != nil {
				t.Fatal(err)
			}
			w := g.Input(elementwiseInput(rng, 2*3*4*5))
			wt, _ := w.Value.Reshape(2, 3, 4, 5)
			prod, err := Mul(g, y, g.Input(wt))
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Backward(Sum(g, prod)); err != nil {
				t.Fatal(err)
			}
			return [][]float32{xv.Grad.Data(), bn.Weight.Grad.Data(), bn.Bias.Grad.Data()}
		}
		want := grads(CPU{})
		be := &bnBackendCPU{}
		got := grads(be)
		if be.calls != 1 {
			t.Errorf("%v: BatchNormBackward called %d times, want 1", mode, be.calls)
		}
		for i := range want {
			if j := sameBits(got[i], want[i]); j >= 0 {
				t.Errorf("%v: gradient %d differs at %d: %v, want %v", mode, i, j, got[i][j], want[i][j])
			}
		}
	}
}
