package hostcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/train"
)

// roundInputs are the values rounding gets wrong first: ties, the fp16
// overflow and subnormal edges, NaNs with payloads, infinities, float32
// subnormals; then random bit patterns and random fp16-range values.
func roundInputs(rng *rand.Rand) []float32 {
	fb := math.Float32frombits
	x := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65519.996, 65520, -65520, 65536, 1e30, -1e30,
		math.MaxFloat32, -math.MaxFloat32, 1.0 / (1 << 14), 1.0 / (1 << 24), 1.0 / (1 << 25), 3.0 / (1 << 25),
		1.5 / (1 << 24), 2.5 / (1 << 24), 1.0 / (1 << 26), 6.1e-5, -6.1e-5,
		float32(math.Inf(1)), float32(math.Inf(-1)), fb(0x7fc00000), fb(0xffc00001), fb(0x7f800001), fb(0x7f80ffff),
		fb(0x00000001), fb(0x807fffff), fb(0x3f808000), fb(0x3f818000), fb(0x3f807fff), fb(0x3f800fff),
		fb(0x3f801000), fb(0x3f803000), fb(0x3f802000), fb(0x7f7f8000), fb(0x477fefff), fb(0x477ff000)}
	for i := 0; i < 4000; i++ {
		x = append(x, fb(rng.Uint32()))
		x = append(x, float32(rng.NormFloat64()*math.Pow(2, float64(rng.IntN(50)-30))))
	}
	return x
}

// TestRound compares detlab_round_bf16 and detlab_round_fp16 with
// nn.RoundBF16 and nn.RoundFP16 bit for bit (NaN payloads included).
func TestRound(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	x := roundInputs(rng)
	for _, tc := range []struct {
		kernel string
		ref    func(float32) float32
	}{{"detlab_round_bf16", nn.RoundBF16}, {"detlab_round_fp16", nn.RoundFP16}} {
		t.Run(tc.kernel, func(t *testing.T) {
			out := launch(t, tc.kernel, 3, 256, []int64{int64(len(x))}, f32b(x), f32b(make([]float32, len(x))))
			got := bf32(t, out[1])
			bad := 0
			for i, v := range x {
				if w := tc.ref(v); math.Float32bits(got[i]) != math.Float32bits(w) {
					if bad < 5 {
						t.Errorf("%s(%v = %#08x) = %#08x, want %#08x", tc.kernel, v, math.Float32bits(v), math.Float32bits(got[i]), math.Float32bits(w))
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d differ", bad, len(x))
			}
		})
	}
}

// specials mixes NaN, infinities and signed zeros into random data.
func specials(rng *rand.Rand, n int) []float32 {
	x := randn(rng, n)
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1))} {
		x[rng.IntN(n)] = v
	}
	return x
}

// relu is lib/nn's ReLU: max(v, 0) with NaN propagating.
func relu(v float32) float32 {
	if !(v > 0) && v == v {
		return 0
	}
	return v
}

func TestElementwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, n := range []int{1, 31, 257, 1000} {
		grid, block := smallGrid(rng, n)
		a, b, dx0 := specials(rng, n), specials(rng, n), randn(rng, n)
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			for _, r := range []int64{0, 1} {
				want := make([]float32, n)
				for i := range want {
					want[i] = a[i] + b[i]
					if r == 1 {
						want[i] = relu(want[i])
					}
				}
				out := launch(t, "detlab_add", grid, block, []int64{int64(n), r}, f32b(a), f32b(b), f32b(make([]float32, n)))
				checkExact(t, fmt.Sprintf("add relu=%d", r), bf32(t, out[2]), want)
			}
			want := make([]float32, n)
			for i, v := range a {
				want[i] = relu(v)
			}
			out := launch(t, "detlab_relu", grid, block, []int64{int64(n)}, f32b(a), f32b(make([]float32, n)))
			checkExact(t, "relu", bf32(t, out[1]), want)

			for i := range want {
				want[i] = dx0[i]
				if a[i] > 0 {
					want[i] += b[i]
				}
			}
			out = launch(t, "detlab_relu_backward", grid, block, []int64{int64(n)}, f32b(a), f32b(b), f32b(dx0))
			checkExact(t, "relu_backward", bf32(t, out[2]), want)

			const s = float32(1.0 / 1024)
			for i, v := range a {
				want[i] = v * s
			}
			out = launch(t, "detlab_scale", grid, block, []int64{int64(n), fbits(s)}, f32b(a))
			checkExact(t, "scale", bf32(t, out[0]), want)
		})
	}
}

func TestNonfinite(t *testing.T) {
	tests := []struct {
		name string
		x    []float32
		want int32
	}{
		{"finite", []float32{1, -2, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 0}, 0},
		{"+Inf", []float32{1, float32(math.Inf(1)), 2}, 1},
		{"-Inf last", []float32{1, 2, float32(math.Inf(-1))}, 1},
		{"NaN first", []float32{float32(math.NaN()), 2, 3}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := append(make([]float32, 500), tc.x...) // past the first grid turn
			out := launch(t, "detlab_nonfinite", 2, 64, []int64{int64(len(x))}, f32b(x), i32b([]int32{0}))
			if got := bi32(t, out[1])[0]; got != tc.want {
				t.Errorf("flag = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSGD runs two steps (the first, which sets the momentum buffer, and a
// later one) of detlab_sgd_step against lib/train's SGD.Step, bit for bit.
func TestSGD(t *testing.T) {
	tests := []struct {
		name string
		opt  train.SGD
	}{
		{"plain", train.SGD{}},
		{"weight decay", train.SGD{WeightDecay: 5e-4}},
		{"momentum", train.SGD{Momentum: 0.9, WeightDecay: 5e-4}},
		{"nesterov", train.SGD{Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4}},
		{"dampening", train.SGD{Momentum: 0.5, Dampening: 0.25}},
	}
	rng := rand.New(rand.NewPCG(19, 20))
	const n, lr = 777, 0.005
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := nn.NewParam("w", n)
			copy(p.Value.Data(), randn(rng, n))
			p.Grad = tensor.New(n)
			w := append([]float32(nil), p.Value.Data()...)
			var buf []byte
			if tc.opt.Momentum != 0 {
				buf = f32b(make([]float32, n))
			}
			opt := tc.opt
			for step := 0; step < 2; step++ {
				g := randn(rng, n)
				copy(p.Grad.Data(), g)
				if err := opt.Step([]*nn.Param{p}, lr); err != nil {
					t.Fatal(err)
				}
				first := int64(0)
				if step == 0 {
					first = 1
				}
				nesterov := int64(0)
				if opt.Nesterov {
					nesterov = 1
				}
				out := launch(t, "detlab_sgd_step", 2, 64, []int64{n, fbits(lr), fbits(float32(opt.Momentum)),
					fbits(float32(opt.Dampening)), fbits(float32(opt.WeightDecay)), nesterov, first}, f32b(w), f32b(g), buf)
				w, buf = bf32(t, out[0]), out[2]
				checkExact(t, fmt.Sprintf("step %d: p", step), w, p.Value.Data())
				if opt.Momentum != 0 {
					checkExact(t, fmt.Sprintf("step %d: buf", step), bf32(t, buf), opt.Buffers["w"])
				}
			}
		})
	}
}
