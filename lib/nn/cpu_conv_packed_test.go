package nn

import (
	"math"
	"math/rand"
	"testing"
)

// TestConvPackedWeights: an inference graph's im2col convolution with a
// parameter's weights of at least packedAMin values multiplies the cached
// packed weights (compute.PackedA), bit for bit what packing per call
// gives (a training graph's geometry, no cache), with the scale, shift,
// residual and ReLU of the epilogue; the packing is rebuilt when the
// weights change (MarkChanged) or the folded scale does; small weights,
// training graphs and weights that are not a parameter's are not cached.
func TestConvPackedWeights(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	for _, tc := range []struct {
		name          string
		n, c, h, k, s int
		cached        bool
	}{
		{"layer4 downsampling 3x3/2", 1, 256, 14, 512, 2, true},
		{"batch 2, partial strips", 2, 64, 9, 116, 2, true},
		{"small weights", 1, 16, 8, 32, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oh := (tc.h+2-3)/tc.s + 1
			p := NewParam("w", tc.k, tc.c, 3, 3)
			copy(p.Value.Data(), rnd(tc.k*tc.c*9))
			geo := ConvGeom{N: tc.n, C: tc.c, H: tc.h, W: tc.h, K: tc.k, KH: 3, KW: 3, SH: tc.s, SW: tc.s,
				PH: 1, PW: 1, OH: oh, OW: oh, Weights: p.Cache(), forwardOnly: true}
			if winogradFor(geo) != nil {
				t.Fatal("takes the Winograd path")
			}
			x := rnd(tc.n * tc.c * tc.h * tc.h)
			ny := tc.n * tc.k * oh * oh
			ep := ConvEpilogue{Scale: rnd(tc.k), Shift: rnd(tc.k), Residual: rnd(ny), ReLU: true}
			run := func(g ConvGeom) []float32 {
				y := make([]float32, ny)
				CPU{}.Conv2dFused(g, x, p.Value.Data(), ep, y, heapScratch{})
				return y
			}
			direct := geo
			direct.forwardOnly = false
			same := func(what string) {
				t.Helper()
				got, want := run(geo), run(direct)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s: y[%d] = %v, packing per call %v", what, i, got[i], want[i])
					}
				}
			}
			same("first call")
			if a := cachedPackedA(geo, p.Value.Data(), ep.Scale); (a != nil) != tc.cached {
				t.Fatalf("cached = %v, want %v", a != nil, tc.cached)
			}
			if !tc.cached {
				return
			}
			if cachedPackedA(direct, p.Value.Data(), ep.Scale) != nil {
				t.Fatal("a training graph's weights are cached")
			}
			nc := geo
			nc.Weights = nil
			if cachedPackedA(nc, p.Value.Data(), ep.Scale) != nil {
				t.Fatal("weights without a cache are packed")
			}
			same("second call (cached)")
			// Change one weight that the cache's stamp does not sample.
			p.Value.Data()[1] += 0.5
			p.MarkChanged()
			same("after MarkChanged")
			ep.Scale = rnd(tc.k)
			same("new scale")
		})
	}
}
