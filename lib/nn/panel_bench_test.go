package nn

import (
	"fmt"
	"math/rand"
	"testing"
)

// BenchmarkIm2colLayers runs the inference convolutions of ResNet18 at
// 224x224, batch 1, that take the im2col path (CPU.Conv2dFused with a
// folded BatchNorm epilogue): the 7x7 stem, the 3x3 stride-2 and the 1x1
// stride-2 downsampling convolutions.
func BenchmarkIm2colLayers(b *testing.B) {
	for _, l := range []struct{ c, h, k, r, s, p int }{
		{3, 224, 64, 7, 2, 3},
		{64, 56, 128, 3, 2, 1}, {64, 56, 128, 1, 2, 0},
		{128, 28, 256, 3, 2, 1}, {128, 28, 256, 1, 2, 0},
		{256, 14, 512, 3, 2, 1}, {256, 14, 512, 1, 2, 0},
	} {
		oh := (l.h+2*l.p-l.r)/l.s + 1
		geo := ConvGeom{N: 1, C: l.c, H: l.h, W: l.h, K: l.k, KH: l.r, KW: l.r,
			SH: l.s, SW: l.s, PH: l.p, PW: l.p, OH: oh, OW: oh, forwardOnly: true}
		b.Run(fmt.Sprintf("%dx%d-%d-k%d-s%d", l.c, l.h, l.k, l.r, l.s), func(b *testing.B) {
			rng := rand.New(rand.NewSource(1))
			x := randTensor(rng, 0, 1, l.c, l.h, l.h).Data()
			w := randTensor(rng, 0, l.k, l.c, l.r, l.r).Data()
			ep := ConvEpilogue{Scale: randTensor(rng, 0, l.k).Data(), Shift: randTensor(rng, 0, l.k).Data(), ReLU: true}
			y := make([]float32, l.k*oh*oh)
			arena := NewArena()
			b.SetBytes(0)
			b.ReportAllocs()
			for b.Loop() {
				CPU{}.Conv2dFused(geo, x, w, ep, y, arena)
			}
			b.ReportMetric(float64(2*l.k*oh*oh*l.c*l.r*l.r)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
