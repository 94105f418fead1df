package cuda_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// batchNormBackwardChecks compares Backend.BatchNormBackward with
// nn.BatchNorm2d's backward on the CPU (train and eval modes, inputs far
// from zero mean so that the mean's float32 rounding matters, Go and
// managed memory, with and without each gradient). Tolerances allow the
// float32 sums of the device path against nn's float64 ones.
func batchNormBackwardChecks(t *testing.T, b *cuda.Backend, n, c, h, w int) {
	t.Helper()
	rng := rand.New(rand.NewSource(int64(n*1000 + c)))
	hw := h * w
	x := tensor.MustFromSlice(randn(rng, n*c*hw), n, c, h, w)
	for i := range x.Data() {
		x.Data()[i] = 30 + 4*x.Data()[i]
	}
	upstream := tensor.MustFromSlice(randn(rng, n*c*hw), n, c, h, w)
	for _, mode := range []nn.BNMode{nn.BNTrain, nn.BNEval} {
		bn, err := nn.NewBatchNorm2d("bn", c)
		if err != nil {
			t.Fatal(err)
		}
		bn.SetMode(mode)
		copy(bn.Weight.Value.Data(), randn(rng, c))
		copy(bn.Bias.Value.Data(), randn(rng, c))
		for i := range bn.RunningMean.Data() {
			bn.RunningMean.Data()[i] = 29 + rng.Float32()
			bn.RunningVar.Data()[i] = 10 + rng.Float32()
		}
		mean, invstd := make([]float64, c), make([]float64, c)
		if mode == nn.BNTrain {
			variance := make([]float64, c)
			nn.CPU{}.ChannelStats(x.Data(), n, c, hw, mean, variance)
			for i := range c {
				invstd[i] = 1 / math.Sqrt(variance[i]+bn.Eps)
			}
		} else {
			for i := range c {
				mean[i] = float64(bn.RunningMean.Data()[i])
				invstd[i] = 1 / math.Sqrt(float64(bn.RunningVar.Data()[i])+bn.Eps)
			}
		}
		g := nn.NewGraph()
		xv := g.Leaf(x.Clone(), true)
		out, err := bn.Forward(g, xv)
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
		want := map[string][]float32{"dx": xv.Grad.Data(), "dgamma": bn.Weight.Grad.Data(), "dbeta": bn.Bias.Grad.Data()}
		for _, mem := range []struct {
			name string
			buf  func([]float32) []float32
		}{{"go", func(v []float32) []float32 { return append([]float32(nil), v...) }},
			{"managed", func(v []float32) []float32 { m := b.Alloc(len(v)); copy(m, v); return m }}} {
			for _, only := range []string{"", "dx", "dgamma", "dbeta"} {
				got := map[string][]float32{}
				for k, v := range want {
					if only == "" || only == k {
						got[k] = mem.buf(make([]float32, len(v)))
						for i := range got[k] {
							got[k][i] = 0.5 // gradients accumulate
						}
					}
				}
				b.BatchNormBackward(mem.buf(x.Data()), mem.buf(upstream.Data()), got["dx"], got["dgamma"], got["dbeta"],
					n, c, hw, mean, invstd, mem.buf(bn.Weight.Value.Data()), mode == nn.BNTrain)
				syncT(t, b)
				for k, v := range got {
					ref := make([]float32, len(v))
					for i, r := range want[k] {
						ref[i] = r + 0.5
					}
					tol := golden.Tol{Atol: 1e-5 * (1 + maxAbs(ref)), RelL2: 1e-5}
					if d := golden.Compare(v, ref, tol); d != "" {
						t.Errorf("%v %s [%s memory, only %q, n=%d c=%d hw=%d]: %s", mode, k, mem.name, only, n, c, hw, d)
					}
				}
			}
		}
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

var bnShapes = [][4]int{{1, 1, 2, 3}, {2, 3, 5, 7}, {2, 16, 12, 10}}

func TestBatchNormBackwardOnFakeDevice(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	for _, s := range bnShapes {
		t.Run(fmt.Sprint(s), func(t *testing.T) { batchNormBackwardChecks(t, b, s[0], s[1], s[2], s[3]) })
	}
}

// TestGPUBatchNormBackward: the same checks on the GPU, with ResNet-sized
// channel counts.
func TestGPUBatchNormBackward(t *testing.T) {
	b := gpu(t)
	for _, s := range append(bnShapes, [4]int{2, 512, 7, 7}, [4]int{2, 64, 80, 80}) {
		t.Run(fmt.Sprint(s), func(t *testing.T) { batchNormBackwardChecks(t, b, s[0], s[1], s[2], s[3]) })
	}
}

func TestBatchNormBackwardBadInput(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	defer func() {
		r := recover()
		e, ok := r.(*cuda.OpError)
		if !ok || e.Op != "BatchNormBackward" {
			t.Errorf("short dy: recovered %v, want an *OpError naming BatchNormBackward", r)
		}
	}()
	b.BatchNormBackward(make([]float32, 12), make([]float32, 11), make([]float32, 12), nil, nil, 2, 2, 3,
		make([]float64, 2), make([]float64, 2), make([]float32, 2), true)
}
