package cuda

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// The fake device's backward kernels, written from kernels.h.
func init() {
	// detlab_convbn_backward(dy, y, scale, dc, dres, N, K, HW, relu):
	// pass = !relu || y > 0; dres += dy where pass (NULL: none); dc =
	// (pass ? dy : +0) * scale[k] (NULL: none).
	fakeKernels["detlab_convbn_backward"] = func(f *fakeGPU, slots []uint64) error {
		I := func(i int) int { return int(int32(uint32(slots[i]))) }
		n, k, hw, relu := I(5), I(6), I(7), I(8) != 0
		total := n * k * hw
		var bufs [5][]float32
		for i, size := range []int{total, total, k, total, total} {
			v, err := f.f32(slots[i], size)
			if err != nil {
				return err
			}
			bufs[i] = v
		}
		dy, y, scale, dc, dres := bufs[0], bufs[1], bufs[2], bufs[3], bufs[4]
		for i := range total {
			d := dy[i]
			pass := !relu || y[i] > 0
			if dres != nil && pass {
				dres[i] += d
			}
			if dc != nil {
				if !pass {
					d = 0
				}
				dc[i] = d * scale[i/hw%k]
			}
		}
		return nil
	}
	// detlab_bias_grad(dy, db, rows, cols): db[j] += float32(float64 sum
	// of dy[r, j] in row order).
	fakeKernels["detlab_bias_grad"] = func(f *fakeGPU, slots []uint64) error {
		rows, cols := int(int32(uint32(slots[2]))), int(int32(uint32(slots[3])))
		dy, err := f.f32(slots[0], rows*cols)
		if err != nil {
			return err
		}
		db, err := f.f32(slots[1], cols)
		if err != nil {
			return err
		}
		for j := range db {
			var s float64
			for r := range rows {
				s += float64(dy[r*cols+j])
			}
			db[j] += float32(s)
		}
		return nil
	}
}

// TestBackwardLaunches: on a graph over the backend, the fused ConvBN's
// backward runs as one detlab_convbn_backward (none when no input needs a
// gradient), Linear's bias as detlab_bias_add and detlab_bias_grad, and
// nn.ZeroGradsOn clears managed gradients with device memsets.
func TestBackwardLaunches(t *testing.T) {
	f := newFakeGPU()
	f.fast = true
	b := newBackend(f, 0, "fake", false)
	defer b.Close()
	rng := rand.New(rand.NewSource(3))
	conv, err := nn.NewConv2d("conv", 3, 4, 3, 1, 1, false, rng)
	if err != nil {
		t.Fatal(err)
	}
	bn, err := nn.NewBatchNorm2d("bn", 4)
	if err != nil {
		t.Fatal(err)
	}
	bn.SetMode(nn.BNFrozen)
	lin, err := nn.NewLinear("fc", 4*5*5, 6, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	count := func() map[string]int {
		c := map[string]int{}
		for _, l := range f.launches {
			c[l.name]++
		}
		f.launches = nil
		return c
	}
	arena := nn.NewArenaWith(b.Alloc)
	g := nn.NewGraph().WithBackend(b).WithArena(arena)
	x := g.Leaf(tensor.New(2, 3, 5, 5), true)
	res := g.Leaf(tensor.New(2, 4, 5, 5), true)
	y, err := nn.ConvBN(g, conv, bn, x, res, true)
	if err != nil {
		t.Fatal(err)
	}
	flat, err := nn.Reshape(g, y, 2, 4*5*5)
	if err != nil {
		t.Fatal(err)
	}
	f.launches = nil
	z, err := lin.Forward(g, flat)
	if err != nil {
		t.Fatal(err)
	}
	if c := count(); c["detlab_bias_add"] != 1 {
		t.Errorf("Linear forward launched %v, want one detlab_bias_add", c)
	}
	if err := g.Backward(nn.Sum(g, z)); err != nil {
		t.Fatal(err)
	}
	if c := count(); c["detlab_convbn_backward"] != 1 || c["detlab_bias_grad"] != 1 {
		t.Errorf("backward launched %v, want one detlab_convbn_backward and one detlab_bias_grad", c)
	}
	g.Release()

	// Only the residual needs a gradient: still one launch (dc not made).
	g = nn.NewGraph().WithBackend(b).WithArena(arena)
	conv.Weight.Trainable = false
	x = g.Input(tensor.New(2, 3, 5, 5))
	res = g.Leaf(tensor.New(2, 4, 5, 5), true)
	if y, err = nn.ConvBN(g, conv, bn, x, res, false); err != nil {
		t.Fatal(err)
	}
	f.launches = nil
	if err := g.Backward(nn.Sum(g, y)); err != nil {
		t.Fatal(err)
	}
	if c := count(); c["detlab_convbn_backward"] != 1 {
		t.Errorf("residual-only backward launched %v, want one detlab_convbn_backward", c)
	}
	g.Release()

	// ZeroGradsOn: managed gradients by memset, nil ones skipped.
	p := nn.NewParam("p", 10)
	p.Grad = tensor.MustFromSlice(b.Alloc(10), 10)
	p.Grad.Data()[3] = 5
	q := nn.NewParam("q", 3) // no gradient yet
	before := len(f.memsets)
	nn.ZeroGradsOn(b, []*nn.Param{p, q})
	if len(f.memsets) != before+1 || p.Grad.Data()[3] != 0 {
		t.Errorf("ZeroGradsOn: %d memsets, grad[3] = %v; want one memset and 0", len(f.memsets)-before, p.Grad.Data()[3])
	}
	p.Grad.Data()[3] = 5
	nn.ZeroGradsOn(nil, []*nn.Param{p, q})
	if p.Grad.Data()[3] != 0 {
		t.Errorf("ZeroGradsOn(nil): grad[3] = %v", p.Grad.Data()[3])
	}
}

// TestBackwardSpecialValues: ConvBNBackward and BiasGrad on the fake
// device keep the host loops' NaN, -0 and infinity behaviour (a masked
// NaN gradient gives +0*scale, a -0 residual gradient stays -0 where the
// mask is closed, and a sum over no rows turns -0 into +0), and short
// slices panic with an *OpError naming the operation.
func TestBackwardSpecialValues(t *testing.T) {
	b := newBackend(newFakeGPU(), 0, "fake", false)
	defer b.Close()
	nan, inf, negZero := float32(math.NaN()), float32(math.Inf(1)), float32(math.Copysign(0, -1))
	dy := []float32{nan, 1, -2, negZero, inf, 3}
	y := []float32{1, nan, negZero, 2, -1, 0}
	scale := []float32{-1, inf}
	for _, relu := range []bool{false, true} {
		dc := make([]float32, 6)
		dres := []float32{negZero, negZero, negZero, negZero, negZero, negZero}
		b.ConvBNBackward(dy, y, scale, dc, dres, 1, 2, 3, relu)
		for i := range dy {
			pass := !relu || y[i] > 0
			d, r := dy[i], negZero
			if pass {
				r += d
			} else {
				d = 0
			}
			wantDC := d * scale[i/3]
			if !sameBits(dc[i], wantDC) || !sameBits(dres[i], r) {
				t.Errorf("relu=%v [%d]: dc %v dres %v, want %v %v", relu, i, dc[i], dres[i], wantDC, r)
			}
		}
	}
	db := []float32{negZero, 1}
	b.BiasGrad(nil, db, 0, 2)
	if math.Float32bits(db[0]) != 0 || db[1] != 1 {
		t.Errorf("BiasGrad over no rows: %v, want [+0 1]", db)
	}
	for name, f := range map[string]func(){
		"ConvBNBackward": func() { b.ConvBNBackward(dy, y, scale, make([]float32, 6), nil, 1, 2, 4, false) },
		"BiasAdd":        func() { b.BiasAdd(make([]float32, 5), scale, 3, 2) },
		"BiasGrad":       func() { b.BiasGrad(dy, make([]float32, 1), 3, 2) },
	} {
		func() {
			defer func() {
				r := recover()
				oe, ok := r.(*OpError)
				if !ok || oe.Op != name || !strings.Contains(oe.Error(), "elements") {
					t.Errorf("%s with a short slice: recovered %v, want an *OpError for %s", name, r, name)
				}
			}()
			f()
		}()
	}
}

// sameBits reports equal bits, any NaN matching any NaN.
func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}
