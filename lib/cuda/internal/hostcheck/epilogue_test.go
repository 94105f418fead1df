package hostcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/detlab/detlab/lib/nn"
)

// TestConvEpilogue compares detlab_conv_epilogue with lib/nn's fused
// convolution bit for bit, -0 included: the reference is
// nn.CPU.Conv2dFused in float16 (which the CPU does not multiply natively,
// so it runs Conv2d and then lib/nn's applyConvEpilogue), the kernel's
// input that Conv2d's output. Products are overflowed to infinities (and
// NaN) by float16's range, one image is zero so that a negative or zero
// scale and a -0 shift make -0, and the residual holds NaN, -0 and
// infinities; every combination of scale, shift, residual (present or
// NULL) and ReLU runs (half of them on each geometry).
func TestConvEpilogue(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	negZero := float32(math.Copysign(0, -1))
	j := 0
	for name, geo := range convGeoms(rng, 2) {
		j++
		geo.N, geo.K, geo.Precision = 2, 1+rng.IntN(7), nn.Float16
		ohw := geo.OH * geo.OW
		out := geo.N * geo.K * ohw
		x := randn(rng, geo.N*geo.C*geo.H*geo.W)
		clear(x[:geo.C*geo.H*geo.W]) // image 0: zero products
		x[len(x)-1] = 7e4            // float16 infinity
		w := randn(rng, geo.K*geo.C*geo.KH*geo.KW)
		conv := make([]float32, out)
		nn.CPU{}.Conv2d(geo, x, w, nil, conv, nn.NewArena())
		scale, shift, res := randn(rng, geo.K), randn(rng, geo.K), randn(rng, out)
		scale[0], shift[0] = -1.5, negZero
		if geo.K > 1 {
			scale[1] = 0
		}
		res[0], res[out-1] = float32(math.NaN()), negZero
		res[rng.IntN(out)], res[rng.IntN(out)] = float32(math.Inf(1)), float32(math.Inf(-1))
		for mask := range 16 {
			if (mask+j)%2 != 0 {
				continue // half the combinations per geometry, all of them over two
			}
			var ep nn.ConvEpilogue
			if mask&1 != 0 {
				ep.Scale = scale
			}
			if mask&2 != 0 {
				ep.Shift = shift
			}
			if mask&4 != 0 {
				ep.Residual = res
			}
			ep.ReLU = mask&8 != 0
			want := make([]float32, out)
			nn.CPU{}.Conv2dFused(geo, x, w, ep, want, nn.NewArena())
			relu := int64(0)
			if ep.ReLU {
				relu = 1
			}
			grid, block := smallGrid(rng, out)
			got := launch(t, "detlab_conv_epilogue", grid, block, []int64{int64(geo.N), int64(geo.K), int64(ohw), relu},
				f32b(conv), f32b(ep.Scale), f32b(ep.Shift), f32b(ep.Residual))
			what := fmt.Sprintf("%s K=%d scale=%v shift=%v residual=%v relu=%v", name, geo.K,
				ep.Scale != nil, ep.Shift != nil, ep.Residual != nil, ep.ReLU)
			checkBits(t, what, bf32(t, got[0]), want)
		}
	}
}

// checkBits is checkExact that tells -0 from +0 (any NaN matches any
// NaN).
func checkBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		g, w := got[i], want[i]
		if (g != g && w != w) || math.Float32bits(g) == math.Float32bits(w) {
			continue
		}
		if bad < 5 {
			t.Errorf("%s[%d] = %v (%#08x), want %v (%#08x)", what, i, g, math.Float32bits(g), w, math.Float32bits(w))
		}
		bad++
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}
