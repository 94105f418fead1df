package hostcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// bnRef is lib/nn's train-mode BatchNorm2d on the CPU: one forward
// (ForwardReLU with relu) and the backward of sum(out*up).
type bnRef struct{ out, rm, rv, dx, dgamma, dbeta []float32 }

func bnTrainRef(t *testing.T, x []float32, shape []int, up, gamma, beta, rm, rv []float32, relu bool) bnRef {
	t.Helper()
	bn, err := nn.NewBatchNorm2d("bn", shape[1])
	if err != nil {
		t.Fatal(err)
	}
	bn.SetMode(nn.BNTrain)
	copy(bn.Weight.Value.Data(), gamma)
	copy(bn.Bias.Value.Data(), beta)
	copy(bn.RunningMean.Data(), rm)
	copy(bn.RunningVar.Data(), rv)
	g := nn.NewGraph().WithBackend(nn.CPU{})
	xv := g.Leaf(tensor.MustFromSlice(append([]float32(nil), x...), shape...), true)
	forward := bn.Forward
	if relu {
		forward = bn.ForwardReLU
	}
	out, err := forward(g, xv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := nn.Mul(g, out, g.Input(tensor.MustFromSlice(up, shape...)))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(nn.Sum(g, p)); err != nil {
		t.Fatal(err)
	}
	return bnRef{out.Value.Data(), bn.RunningMean.Data(), bn.RunningVar.Data(), xv.Grad.Data(), bn.Weight.Grad.Data(), bn.Bias.Grad.Data()}
}

// checkClose fails where got and want differ by more than rel*(1+|want|).
func checkClose(t *testing.T, what string, got, want []float32, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= rel*(1+math.Abs(float64(want[i])))) {
			t.Errorf("%s[%d] = %v, want %v", what, i, got[i], want[i])
			return
		}
	}
}

// TestBatchNormTrain runs the train-mode BatchNorm kernels
// (detlab_bn_train_stats, detlab_channel_affine with its coefficients,
// detlab_bn_backward_sums, detlab_bn_backward_dx) with real barriers and
// compares them with lib/nn's BatchNorm2d on the CPU, fused ReLU or not,
// inputs far from zero mean. With one thread per block the sums run in
// nn's order, so the forward (output, running statistics) must match bit
// for bit; other launches sum in a tree (float64, relative 1e-12 apart),
// and the backward reads the mean and invstd back from their float32
// pairs (~48 bits), so those compare to 1e-6 relative. The statistics
// pairs are checked against nn.CPU's float64 ones to 1e-13.
func TestBatchNormTrain(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	launches := [][2]int{{0, 1}, {0, 256}, {2, 100}, {1, 1024}, {0, 32}, {0, 1}}
	for i, l := range launches {
		n, c, hw := 1+rng.IntN(3), 1+rng.IntN(6), 1+rng.IntN(300)
		if n*hw < 2 {
			hw = 2
		}
		grid := l[0]
		if grid == 0 {
			grid = c
		}
		relu := i%2 == 1
		t.Run(fmt.Sprintf("grid %d block %d N=%d C=%d HW=%d relu %v", grid, l[1], n, c, hw, relu), func(t *testing.T) {
			total := n * c * hw
			x, up := randn(rng, total), randn(rng, total)
			for j := range x {
				x[j] = 500 + 3*x[j]
			}
			gamma, beta := randn(rng, c), randn(rng, c)
			rm, rv := make([]float32, c), make([]float32, c)
			for j := range c {
				rm[j], rv[j] = 400+rng.Float32(), 5+rng.Float32()
			}
			const momentum, eps = 0.1, 1e-5
			want := bnTrainRef(t, x, []int{n, c, hw, 1}, up, gamma, beta, rm, rv, relu)

			out := launch(t, "detlab_bn_train_stats", grid, l[1],
				[]int64{int64(n), int64(c), int64(hw), int64(math.Float64bits(momentum)), int64(math.Float64bits(eps))},
				f32b(x), f32b(gamma), f32b(beta), f32b(rm), f32b(rv), make([]byte, 16*c), make([]byte, 8*c))
			gotRM, gotRV, stats, affine := bf32(t, out[3]), bf32(t, out[4]), bf32(t, out[5]), bf32(t, out[6])
			mean, variance := make([]float64, c), make([]float64, c)
			nn.CPU{}.ChannelStats(x, n, c, hw, mean, variance)
			for ch := range c {
				gm := float64(stats[ch]) + float64(stats[c+ch])
				gi := float64(stats[2*c+ch]) + float64(stats[3*c+ch])
				wi := 1 / math.Sqrt(variance[ch]+eps)
				if math.Abs(gm-mean[ch]) > 1e-13*math.Abs(mean[ch]) || math.Abs(gi-wi) > 1e-13*wi {
					t.Errorf("channel %d: stats mean %v invstd %v, want %v %v", ch, gm, gi, mean[ch], wi)
				}
			}
			reluFlag := int64(0)
			if relu {
				reluFlag = 1
			}
			ag, ab := smallGrid(rng, total)
			y := bf32(t, launch(t, "detlab_channel_affine", ag, ab, []int64{int64(n), int64(c), int64(hw), reluFlag},
				f32b(x), make([]byte, 4*total), f32b(affine[:c]), f32b(affine[c:]))[1])
			if l[1] == 1 {
				checkExact(t, "out", y, want.out)
				checkExact(t, "running_mean", gotRM, want.rm)
				checkExact(t, "running_var", gotRV, want.rv)
			} else {
				checkClose(t, "out", y, want.out, 1e-6)
				checkClose(t, "running_mean", gotRM, want.rm, 1e-7)
				checkClose(t, "running_var", gotRV, want.rv, 1e-7)
			}

			var yb []byte
			if relu {
				yb = f32b(y)
			}
			dg, db := make([]float32, c), make([]float32, c)
			for j := range c {
				dg[j], db[j] = 0.25, -0.5 // gradients accumulate
			}
			out = launch(t, "detlab_bn_backward_sums", grid, l[1], []int64{int64(n), int64(c), int64(hw), reluFlag},
				f32b(x), yb, f32b(up), f32b(stats), f32b(gamma), f32b(dg), f32b(db), make([]byte, 24*c))
			gotDG, gotDB, coef := bf32(t, out[5]), bf32(t, out[6]), out[7]
			for j := range c {
				want.dgamma[j] += 0.25
				want.dbeta[j] += -0.5
			}
			checkClose(t, "dgamma", gotDG, want.dgamma, 1e-6)
			checkClose(t, "dbeta", gotDB, want.dbeta, 1e-6)
			dx := make([]float32, total)
			for j := range dx {
				dx[j] = 1
				want.dx[j]++
			}
			gotDX := bf32(t, launch(t, "detlab_bn_backward_dx", ag, ab, []int64{int64(n), int64(c), int64(hw), reluFlag},
				f32b(x), yb, f32b(up), f32b(stats), coef, f32b(dx))[5])
			checkClose(t, "dx", gotDX, want.dx, 1e-6)
		})
	}
}
