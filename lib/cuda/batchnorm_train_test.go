package cuda_test

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// bnTrainRun is one train-mode BatchNorm2d forward (ForwardReLU with
// relu) and backward of sum(out*upstream) on a graph of be, returning
// the output, the running statistics after it and the three gradients.
type bnTrainRun struct{ out, runMean, runVar, dx, dgamma, dbeta []float32 }

func bnTrain(t *testing.T, be nn.Backend, arena *nn.Arena, x, upstream *tensor.Tensor, gamma, beta, rm, rv []float32, relu bool) bnTrainRun {
	t.Helper()
	c := x.Shape()[1]
	bn, err := nn.NewBatchNorm2d("bn", c)
	if err != nil {
		t.Fatal(err)
	}
	bn.SetMode(nn.BNTrain)
	copy(bn.Weight.Value.Data(), gamma)
	copy(bn.Bias.Value.Data(), beta)
	copy(bn.RunningMean.Data(), rm)
	copy(bn.RunningVar.Data(), rv)
	g := nn.NewGraph().WithBackend(be).WithArena(arena)
	defer g.Release()
	xv := g.Leaf(x.Clone(), true)
	var out *nn.Var
	if relu {
		out, err = bn.ForwardReLU(g, xv)
	} else {
		out, err = bn.Forward(g, xv)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := nn.Mul(g, out, g.Input(upstream))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(nn.Sum(g, p)); err != nil {
		t.Fatal(err)
	}
	syncT(t, be)
	cp := func(v []float32) []float32 { return append([]float32(nil), v...) }
	return bnTrainRun{cp(out.Value.Data()), cp(bn.RunningMean.Data()), cp(bn.RunningVar.Data()),
		cp(xv.Grad.Data()), cp(bn.Weight.Grad.Data()), cp(bn.Bias.Grad.Data())}
}

// batchNormTrainChecks compares the train-mode BatchNorm2d on b (through
// nn.BatchNormTrainBackend: statistics, running statistics, normalisation
// and backward on the device) with the CPU's, with and without the fused
// ReLU, inputs far from zero mean (the two-pass case). The device sums in
// float64 as the CPU does but in another order (a block tree), so results
// agree to float32 rounding: relative 2e-6 forward, 1e-5 for gradients.
func batchNormTrainChecks(t *testing.T, b *cuda.Backend, n, c, h, w int) {
	t.Helper()
	rng := rand.New(rand.NewSource(int64(n*1000 + c + h)))
	hw := h * w
	x := tensor.MustFromSlice(randn(rng, n*c*hw), n, c, h, w)
	for i := range x.Data() {
		x.Data()[i] = 30 + 4*x.Data()[i]
	}
	upstream := tensor.MustFromSlice(randn(rng, n*c*hw), n, c, h, w)
	gamma, beta := randn(rng, c), randn(rng, c)
	rm, rv := make([]float32, c), make([]float32, c)
	for i := range c {
		rm[i], rv[i] = 29+rng.Float32(), 10+rng.Float32()
	}
	for _, relu := range []bool{false, true} {
		want := bnTrain(t, nn.CPU{}, nil, x, upstream, gamma, beta, rm, rv, relu)
		got := bnTrain(t, b, nn.NewArenaWith(b.Alloc), x, upstream, gamma, beta, rm, rv, relu)
		for _, k := range []struct {
			name      string
			got, want []float32
			rel       float64
		}{{"out", got.out, want.out, 2e-6}, {"running_mean", got.runMean, want.runMean, 2e-7},
			{"running_var", got.runVar, want.runVar, 2e-7}, {"dx", got.dx, want.dx, 1e-5},
			{"dgamma", got.dgamma, want.dgamma, 1e-5}, {"dbeta", got.dbeta, want.dbeta, 1e-5}} {
			tol := golden.Tol{Atol: k.rel * (1 + maxAbs(k.want)), RelL2: k.rel}
			if d := golden.Compare(k.got, k.want, tol); d != "" {
				t.Errorf("relu %v %s [n=%d c=%d hw=%d]: %s", relu, k.name, n, c, hw, d)
			}
		}
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

var bnTrainShapes = [][4]int{{1, 1, 1, 2}, {2, 3, 5, 7}, {2, 16, 12, 10}}

// TestGPUBatchNormTrain runs batchNormTrainChecks on the device (and on
// the fake device, eager and lazy: TestBatchNormTrainOnFakeDevice).
func TestGPUBatchNormTrain(t *testing.T) {
	b := gpu(t)
	shapes := bnTrainShapes
	if !fakeMode() {
		shapes = append(shapes, [4]int{2, 512, 7, 7}, [4]int{2, 64, 80, 80})
	}
	for _, s := range shapes {
		t.Run(fmt.Sprint(s), func(t *testing.T) { batchNormTrainChecks(t, b, s[0], s[1], s[2], s[3]) })
	}
}

func TestBatchNormTrainOnFakeDevice(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		b := cuda.NewFakeBackend(lazy)
		for _, s := range bnTrainShapes {
			t.Run(fmt.Sprint("lazy ", lazy, s), func(t *testing.T) { batchNormTrainChecks(t, b, s[0], s[1], s[2], s[3]) })
		}
		b.Close()
	}
}

// TestBatchNormTrainSyncs: a train-mode BatchNorm forward and backward
// on managed memory queue their work and never wait for the device.
func TestBatchNormTrainSyncs(t *testing.T) {
	b := cuda.NewFakeBackend(true)
	defer b.Close()
	const n, c, hw = 2, 3, 10
	buf := func(v float32, k int) []float32 {
		m := b.Alloc(k)
		for i := range m {
			m[i] = v + float32(i%7)
		}
		return m
	}
	x, y, dy, dx := buf(1, n*c*hw), buf(0, n*c*hw), buf(0.5, n*c*hw), buf(0, n*c*hw)
	gamma, beta, rm, rv, dg, db := buf(1, c), buf(0, c), buf(0, c), buf(1, c), buf(0, c), buf(0, c)
	stats := b.Alloc(nn.BatchNormStatsPerChannel * c)
	before := b.Stats()
	b.BatchNormTrainForward(x, y, n, c, hw, gamma, beta, rm, rv, stats, 0.1, 1e-5, true)
	b.BatchNormTrainBackward(x, y, dy, dx, dg, db, n, c, hw, stats, gamma, true)
	after := b.Stats()
	if s := after.Syncs - before.Syncs; s != 0 {
		t.Errorf("%d synchronizations, want 0", s)
	}
	if l := after.Launches - before.Launches; l != 4 {
		t.Errorf("%d launches, want 4 (statistics, affine, sums, dx)", l)
	}
	syncT(t, b)
}

func TestBatchNormTrainBadInput(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	for _, tc := range []struct {
		name, op string
		call     func()
	}{
		{"short stats", "BatchNormTrainForward", func() {
			b.BatchNormTrainForward(make([]float32, 12), make([]float32, 12), 2, 2, 3, make([]float32, 2), make([]float32, 2),
				make([]float32, 2), make([]float32, 2), make([]float32, 7), 0.1, 1e-5, false)
		}},
		{"short y", "BatchNormTrainForward", func() {
			b.BatchNormTrainForward(make([]float32, 12), make([]float32, 11), 2, 2, 3, make([]float32, 2), make([]float32, 2),
				make([]float32, 2), make([]float32, 2), make([]float32, 8), 0.1, 1e-5, false)
		}},
		{"short dy", "BatchNormTrainBackward", func() {
			b.BatchNormTrainBackward(make([]float32, 12), nil, make([]float32, 11), make([]float32, 12), nil, nil, 2, 2, 3,
				make([]float32, 8), make([]float32, 2), false)
		}},
		{"relu without y", "BatchNormTrainBackward", func() {
			b.BatchNormTrainBackward(make([]float32, 12), nil, make([]float32, 12), make([]float32, 12), nil, nil, 2, 2, 3,
				make([]float32, 8), make([]float32, 2), true)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if e, ok := r.(*cuda.OpError); !ok || e.Op != tc.op {
					t.Errorf("recovered %v, want an *OpError naming %s", r, tc.op)
				}
			}()
			tc.call()
		})
	}
}

// TestBatchNormEvalAfterDeviceTrain: an eval-mode forward right after a
// train-mode one on a lazy fake device reads the running statistics the
// queued train-mode work updates; BatchNorm2d must wait for it (else the
// eval output uses the old statistics and differs from the CPU's).
func TestBatchNormEvalAfterDeviceTrain(t *testing.T) {
	b := cuda.NewFakeBackend(true)
	defer b.Close()
	const n, c, h, w = 2, 3, 4, 5
	rng := rand.New(rand.NewSource(3))
	x := tensor.MustFromSlice(randn(rng, n*c*h*w), n, c, h, w)
	for i := range x.Data() {
		x.Data()[i] = 5 + 2*x.Data()[i]
	}
	run := func(be nn.Backend, arena *nn.Arena, alloc func(int) []float32) []float32 {
		bn, err := nn.NewBatchNorm2d("bn", c)
		if err != nil {
			t.Fatal(err)
		}
		// The running statistics in the backend's memory, as a model's
		// on the device (Go memory would be staged and waited for).
		bn.RunningMean = tensor.MustFromSlice(alloc(c), c)
		bn.RunningVar = tensor.MustFromSlice(alloc(c), c)
		for i := range c {
			bn.RunningVar.Data()[i] = 1
		}
		bn.SetMode(nn.BNTrain)
		g := nn.NewGraph().WithBackend(be).WithArena(arena)
		defer g.Release()
		if _, err := bn.Forward(g, g.Input(x)); err != nil {
			t.Fatal(err)
		}
		bn.SetMode(nn.BNEval)
		out, err := bn.Forward(g, g.Input(x))
		if err != nil {
			t.Fatal(err)
		}
		syncT(t, be)
		return append([]float32(nil), out.Value.Data()...)
	}
	want := run(nn.CPU{}, nil, func(k int) []float32 { return make([]float32, k) })
	got := run(b, nn.NewArenaWith(b.Alloc), b.Alloc)
	if d := golden.Compare(got, want, golden.Tol{Atol: 1e-5, RelL2: 1e-6}); d != "" {
		t.Errorf("eval forward after a device train forward: %s", d)
	}
}
