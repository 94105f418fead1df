package nn

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// TestPatchRowsMatchesDirect checks the patch-row convolution against the
// float64 direct convolution and the im2col path on strides 1 and 2, 1x1
// and 3x3 and 7x7 kernels, paddings 0-3, batches, maps narrower and wider
// than wgStoreNCHW's 16-pixel blocks and every epilogue part: its error
// must be of the im2col path's size (the same float32 products in another
// order), and it must be the algorithm Conv2dFused chose.
func TestPatchRowsMatchesDirect(t *testing.T) {
	if !hasWinograd {
		t.Skip("the patch-row convolution needs the AVX-512 kernels")
	}
	for _, tc := range []struct {
		n, c, h, w, k, r, s, p  int
		scale, shift, res, relu bool
	}{
		{1, 256, 14, 14, 512, 3, 2, 1, true, true, false, true},  // ResNet18 layer4's first
		{1, 256, 14, 14, 512, 1, 2, 0, true, true, false, false}, // its downsampling
		{1, 512, 7, 7, 512, 3, 1, 1, true, true, true, true},     // layer4, Winograd off
		{2, 32, 9, 11, 48, 3, 2, 1, true, true, true, true},      // batch 2, odd sizes
		{1, 16, 20, 21, 16, 3, 2, 1, false, false, false, false}, // rows wider than 16
		{1, 16, 12, 10, 32, 7, 2, 3, true, false, true, true},    // 7x7, padding 3
		{3, 48, 5, 6, 16, 1, 1, 0, false, true, false, true},     // 1x1 stride 1
	} {
		name := fmt.Sprintf("n%d-c%d-%dx%d-k%d-r%d-s%d-p%d", tc.n, tc.c, tc.h, tc.w, tc.k, tc.r, tc.s, tc.p)
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(tc.c*tc.k + tc.h)))
			oh, ow := (tc.h+2*tc.p-tc.r)/tc.s+1, (tc.w+2*tc.p-tc.r)/tc.s+1
			geo := ConvGeom{N: tc.n, C: tc.c, H: tc.h, W: tc.w, K: tc.k, KH: tc.r, KW: tc.r,
				SH: tc.s, SW: tc.s, PH: tc.p, PW: tc.p, OH: oh, OW: ow, forwardOnly: true}
			p := NewParam("w", tc.k, tc.c, tc.r, tc.r)
			KaimingNormal(p.Value, tc.c*tc.r*tc.r, rng)
			geo.Weights = p.Cache()
			x := activations(rng, tc.n, tc.c, tc.h, tc.w)
			ep := randEpilogue(rng, tc.k, []int{tc.n, tc.k, oh, ow}, tc.scale, tc.shift, tc.res, tc.relu)
			ref := convRef64(geo, x, p.Value.Data(), ep)

			defer func(w, r string) { winogradMode, patchRowsMode = w, r }(winogradMode, patchRowsMode)
			winogradMode = "off"
			patchRowsMode = ""
			if !usePatchRows(geo) {
				t.Fatalf("usePatchRows = false for %d output pixels", tc.n*oh*ow)
			}
			got := make([]float32, len(ref))
			for i := range got {
				got[i] = float32(math.NaN()) // every output must be written
			}
			arena := NewArena()
			CPU{}.Conv2dFused(geo, x, p.Value.Data(), ep, got, arena)
			// Twice: the second call reads the cached packed weights.
			CPU{}.Conv2dFused(geo, x, p.Value.Data(), ep, got, arena)

			patchRowsMode = "off"
			im2col := make([]float32, len(ref))
			CPU{}.Conv2dFused(geo, x, p.Value.Data(), ep, im2col, arena)

			gotMax, gotRel := errStats(got, ref)
			imMax, imRel := errStats(im2col, ref)
			t.Logf("patch rows: max %.3g rel-L2 %.3g; im2col: max %.3g rel-L2 %.3g", gotMax, gotRel, imMax, imRel)
			if math.IsNaN(gotMax) || gotRel > 4*imRel+1e-7 || gotMax > 4*imMax+1e-6 {
				t.Fatalf("patch rows: max %.3g rel-L2 %.3g against im2col's %.3g and %.3g", gotMax, gotRel, imMax, imRel)
			}
		})
	}
}
