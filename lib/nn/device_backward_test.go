package nn

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
)

// backwardCPU is a CPU backend that also implements ConvBNBackend,
// BiasBackend and Zeroer (as lib/cuda's Backend does), with loops written
// from the interfaces' docs, and counts the calls.
type backwardCPU struct {
	CPU
	calls map[string]int
}

func (b *backwardCPU) ConvBNBackward(dy, y, scale, dc, dres []float32, n, k, hw int, relu bool) {
	b.calls["ConvBNBackward"]++
	for i := range n * k * hw {
		pass := !relu || y[i] > 0
		if dres != nil && pass {
			dres[i] += dy[i]
		}
		if dc != nil {
			d := dy[i]
			if !pass {
				d = 0
			}
			dc[i] = d * scale[i/hw%k]
		}
	}
}

func (b *backwardCPU) BiasAdd(y, bias []float32, rows, cols int) {
	b.calls["BiasAdd"]++
	for i := range rows * cols {
		y[i] += bias[i%cols]
	}
}

func (b *backwardCPU) BiasGrad(dy, db []float32, rows, cols int) {
	b.calls["BiasGrad"]++
	for j := range cols {
		var s float64
		for r := range rows {
			s += float64(dy[r*cols+j])
		}
		db[j] += float32(s)
	}
}

func (b *backwardCPU) Zero(x []float32) {
	b.calls["Zero"]++
	clear(x)
}

// TestBackwardBackendDispatch: ConvBN (frozen BatchNorm, every residual
// and ReLU combination) and Linear give bit-identical values and gradients
// on CPU and on a backend with ConvBNBackend and BiasBackend, which gets
// one ConvBNBackward per ConvBN and one BiasAdd and BiasGrad per Linear.
func TestBackwardBackendDispatch(t *testing.T) {
	for _, tc := range []struct {
		residual, relu bool
	}{{false, false}, {false, true}, {true, false}, {true, true}} {
		name := fmt.Sprintf("residual=%v relu=%v", tc.residual, tc.relu)
		run := func(be Backend) [][]float32 {
			rng := rand.New(rand.NewSource(9))
			conv, err := NewConv2d("conv", 3, 4, 3, 2, 1, true, rng)
			if err != nil {
				t.Fatal(err)
			}
			bn, err := NewBatchNorm2d("bn", 4)
			if err != nil {
				t.Fatal(err)
			}
			bn.SetMode(BNFrozen)
			Uniform(bn.Weight.Value, -2, 2, rng)
			Uniform(bn.RunningVar, 0.5, 2, rng)
			lin, err := NewLinear("fc", 4*3*3, 5, true, rng)
			if err != nil {
				t.Fatal(err)
			}
			g := NewGraph().WithBackend(be)
			x := g.Leaf(randTensor(rng, 0, 2, 3, 6, 6), true)
			var res *Var
			if tc.residual {
				res = g.Leaf(randTensor(rng, 0, 2, 4, 3, 3), true)
			}
			y, err := ConvBN(g, conv, bn, x, res, tc.relu)
			if err != nil {
				t.Fatal(err)
			}
			flat, err := Reshape(g, y, 2, 4*3*3)
			if err != nil {
				t.Fatal(err)
			}
			z, err := lin.Forward(g, flat)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Mul(g, z, g.Input(randTensor(rng, 0, 2, 5)))
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Backward(Sum(g, p)); err != nil {
				t.Fatal(err)
			}
			out := [][]float32{z.Value.Data(), x.Grad.Data()}
			if res != nil {
				out = append(out, res.Grad.Data())
			}
			for _, p := range append(conv.Params(), lin.Params()...) {
				out = append(out, p.Grad.Data())
			}
			return out
		}
		want := run(CPU{})
		be := &backwardCPU{calls: map[string]int{}}
		got := run(be)
		if be.calls["ConvBNBackward"] != 1 || be.calls["BiasAdd"] != 1 || be.calls["BiasGrad"] != 1 {
			t.Errorf("%s: backend calls %v, want one ConvBNBackward, BiasAdd and BiasGrad", name, be.calls)
		}
		for i := range want {
			for j := range want[i] {
				if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
					t.Errorf("%s: result %d (output, then gradients) at %d: %v, CPU %v", name, i, j, got[i][j], want[i][j])
					break
				}
			}
		}
	}
}

// TestZeroGradsOn: ZeroGradsOn clears every gradient, through the
// backend's Zeroer when it has one (once per gradient, none for a
// parameter without one) and on the host otherwise or with no backend.
func TestZeroGradsOn(t *testing.T) {
	mk := func() []*Param {
		p, q := NewParam("p", 3), NewParam("q", 2)
		p.Grad = tensor.MustFromSlice([]float32{1, 2, float32(math.NaN())}, 3)
		return []*Param{p, q}
	}
	zb := &backwardCPU{calls: map[string]int{}}
	for _, tc := range []struct {
		name  string
		b     Backend
		zeros int
	}{{"Zeroer", zb, 1}, {"CPU", CPU{}, 0}, {"nil", nil, 0}} {
		ps := mk()
		before := zb.calls["Zero"]
		ZeroGradsOn(tc.b, ps)
		if n := zb.calls["Zero"] - before; n != tc.zeros {
			t.Errorf("%s: %d Zero calls, want %d", tc.name, n, tc.zeros)
		}
		for i, v := range ps[0].Grad.Data() {
			if math.Float32bits(v) != 0 {
				t.Errorf("%s: grad[%d] = %v after ZeroGradsOn", tc.name, i, v)
			}
		}
		if ps[1].Grad != nil {
			t.Errorf("%s: ZeroGradsOn made a gradient for a parameter without one", tc.name)
		}
	}
}

func ExampleZeroGradsOn() {
	p := NewParam("w", 3)
	p.Grad = tensor.MustFromSlice([]float32{1, 2, 3}, 3)
	// A training loop passes its model's backend: a GPU backend clears
	// the gradients in device memory.
	ZeroGradsOn(CPU{}, []*Param{p})
	fmt.Println(p.Grad.Data())
	// Output: [0 0 0]
}
