package cuda_test

import (
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/train"
)

// elementwiseChecks runs the Backend's elementwise, rounding, scaler and
// SGD operations on b and compares them with their host definitions
// (nn's rounding, lib/train's SGD). It is run on the fake device here and
// on a GPU by TestGPUElementwise.
func elementwiseChecks(t *testing.T, b *cuda.Backend, n int) {
	rng := rand.New(rand.NewSource(int64(n)))
	a, c := randn(rng, n), randn(rng, n)
	a[n/2] = float32(math.NaN())
	managed := func(x []float32) []float32 {
		y := b.Alloc(len(x))
		copy(y, x)
		return y
	}
	for _, mem := range []struct {
		name string
		buf  func([]float32) []float32
	}{{"go", func(x []float32) []float32 { return append([]float32(nil), x...) }}, {"managed", managed}} {
		check := func(what string, got, want []float32) {
			t.Helper()
			syncT(t, b)
			if d := compareNaN(got, want, golden.Tol{Atol: 1e-6 * (1 + maxAbs(want))}); d != "" {
				t.Errorf("%s [%s memory, n=%d]: %s", what, mem.name, n, d)
			}
		}
		want := make([]float32, n)
		for _, relu := range []bool{false, true} {
			for i := range want {
				v := a[i] + c[i]
				if relu && v < 0 {
					v = 0
				}
				want[i] = v
			}
			y := mem.buf(make([]float32, n))
			b.Add(mem.buf(a), mem.buf(c), y, relu)
			check("Add", y, want)
		}
		for i, v := range a {
			want[i] = v
			if v < 0 {
				want[i] = 0
			}
		}
		y := mem.buf(a)
		b.ReLU(y, y)
		check("ReLU in place", y, want)
		dx := mem.buf(c)
		b.ReLUBackward(y, mem.buf(a), dx)
		for i := range want {
			want[i] = c[i]
			if y[i] > 0 {
				want[i] += a[i]
			}
		}
		check("ReLUBackward", dx, want)
		for _, p := range []nn.Precision{nn.BFloat16, nn.Float16, nn.Float32} {
			big := make([]float32, n)
			for i := range big {
				big[i] = a[i] * float32(math.Pow(10, float64(i%11-5))) // fp16 overflow and subnormals too
			}
			p.RoundSlice(want, big)
			got := mem.buf(make([]float32, n))
			b.Round(p, got, mem.buf(big))
			check("Round "+p.String(), got, want)
		}
		x := mem.buf(c)
		if b.NonFinite(x) {
			t.Errorf("NonFinite of finite values [%s]", mem.name)
		}
		x[n-1] = float32(math.Inf(-1))
		if !b.NonFinite(x) {
			t.Errorf("NonFinite missed -Inf [%s]", mem.name)
		}
		b.Scale(x[:n-1], 0.5)
		for i := range want[:n-1] {
			want[i] = c[i] * 0.5
		}
		want[n-1] = x[n-1]
		check("Scale", x, want[:n])
	}
	// SGD: two steps against lib/train's SGD on the same parameters.
	for _, opt := range []train.SGD{
		{},
		{Momentum: 0.9, WeightDecay: 5e-4},
		{Momentum: 0.9, Dampening: 0.1, WeightDecay: 1e-2},
		{Momentum: 0.8, Nesterov: true, WeightDecay: 1e-3},
	} {
		ref := &nn.Param{Name: "w", Value: tensor.MustFromSlice(randn(rng, n), n), Trainable: true}
		ref.Grad = tensor.MustFromSlice(randn(rng, n), n)
		w := b.Alloc(n)
		copy(w, ref.Value.Data())
		buf := b.Alloc(n)
		o := opt
		for step := 0; step < 2; step++ {
			if err := o.Step([]*nn.Param{ref}, 0.1); err != nil {
				t.Fatal(err)
			}
			b.SGDStep(w, ref.Grad.Data(), buf, 0.1, float32(opt.Momentum), float32(opt.Dampening), float32(opt.WeightDecay), opt.Nesterov, step == 0)
		}
		syncT(t, b)
		if d := golden.Compare(w, ref.Value.Data(), golden.Tol{Atol: 1e-6}); d != "" {
			t.Errorf("SGDStep %+v: %s", opt, d)
		}
	}
}

func TestElementwiseOnFakeDevice(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	for _, n := range []int{1, 7, 1000} {
		elementwiseChecks(t, b, n)
	}
}

// TestGPUElementwise: the same checks on the GPU, up to sizes past one
// launch's 65535 blocks.
func TestGPUElementwise(t *testing.T) {
	b := gpu(t)
	for _, n := range []int{1, 7, 1000, 20_000_003} {
		elementwiseChecks(t, b, n)
	}
}
