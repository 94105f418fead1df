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

// BenchmarkColdWeights runs inference convolutions of ResNet18 at 224,
// batch 1, with their weights out of the cache, as a forward reads them
// (72 MB of Winograd weights and 11 MB of others, more than the VM's L3):
// between calls it reads a 64 MiB buffer (not timed; the workers park
// meanwhile, so every call pays their wake-up, which a forward does not).
// Layer3's and layer4's 3x3 stride-1 convolutions (14x14 and 7x7 maps)
// with the plan winogradFor chooses (F(2,3) on both: 16.7 MB of
// transformed weights on layer4), F(2,3), F(4,3), the patch-row product
// and im2col (9.4 MB), and the 3x3 stride-2 ones of both with the choice
// (patch rows) and im2col. Measured (2 cores, a slow hour of the VM, 60
// calls): layer4 3x3/1 F(2,3) 1.04-1.18 ms, patch rows 1.39, F(4,3) 1.69,
// im2col 1.79; layer3 F(2,3) 0.89-1.01, F(4,3) 1.03, patch rows 1.41,
// im2col 1.68; stride 2: layer4 patch rows 0.94 against im2col 1.26,
// layer3 0.86 against 1.13. So Winograd keeps the stride-1 layers (the
// smaller weight stream of the others does not make up for 1.7x-2.25x
// the multiplications) and the patch-row product takes the rest of the
// small maps. Keeping im2col's weights packed between calls (the
// micro-kernel then reads them from memory instead of a buffer just
// packed) measured slower cold: layer4's stride-2 convolution 1.5-2.5 ms
// against 1.0-1.7 ms packing per call; the patch-row product reads its
// packed weights as the kernel's vector operand, which streams.
func BenchmarkColdWeights(b *testing.B) {
	flush := make([]float32, 16<<20)
	var sink float32
	for _, l := range []struct {
		name       string
		c, h, k, s int
		mode       string // DETLAB_WINOGRAD's values; "" chooses
		rows       string // DETLAB_PATCH_ROWS's: "" chooses, "off"
	}{
		{"layer4-3x3s1-chosen", 512, 7, 512, 1, "", ""},
		{"layer4-3x3s1-F2", 512, 7, 512, 1, "2", ""},
		{"layer4-3x3s1-F4", 512, 7, 512, 1, "4", ""},
		{"layer4-3x3s1-patchrows", 512, 7, 512, 1, "off", ""},
		{"layer4-3x3s1-im2col", 512, 7, 512, 1, "off", "off"},
		{"layer3-3x3s1-chosen", 256, 14, 256, 1, "", ""},
		{"layer3-3x3s1-F2", 256, 14, 256, 1, "2", ""},
		{"layer3-3x3s1-F4", 256, 14, 256, 1, "4", ""},
		{"layer3-3x3s1-patchrows", 256, 14, 256, 1, "off", ""},
		{"layer3-3x3s1-im2col", 256, 14, 256, 1, "off", "off"},
		{"layer4-3x3s2-chosen", 256, 14, 512, 2, "", ""},
		{"layer4-3x3s2-im2col", 256, 14, 512, 2, "", "off"},
		{"layer3-3x3s2-chosen", 128, 28, 256, 2, "", ""},
		{"layer3-3x3s2-im2col", 128, 28, 256, 2, "", "off"},
	} {
		oh := (l.h+2-3)/l.s + 1
		b.Run(l.name, func(b *testing.B) {
			rng := rand.New(rand.NewSource(1))
			x := randTensor(rng, 0, 1, l.c, l.h, l.h).Data()
			p := NewParam("w", l.k, l.c, 3, 3)
			copy(p.Value.Data(), randTensor(rng, 0, l.k, l.c, 3, 3).Data())
			geo := ConvGeom{N: 1, C: l.c, H: l.h, W: l.h, K: l.k, KH: 3, KW: 3,
				SH: l.s, SW: l.s, PH: 1, PW: 1, OH: oh, OW: oh, Weights: p.Cache(), forwardOnly: true}
			defer func(m string) { winogradMode = m }(winogradMode)
			winogradMode = l.mode
			defer func(m string) { patchRowsMode = m }(patchRowsMode)
			patchRowsMode = l.rows
			ep := ConvEpilogue{Scale: randTensor(rng, 0, l.k).Data(), Shift: randTensor(rng, 0, l.k).Data(), ReLU: true}
			y := make([]float32, l.k*oh*oh)
			arena := NewArena()
			CPU{}.Conv2dFused(geo, x, p.Value.Data(), ep, y, arena)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				for i := 0; i < len(flush); i += 16 {
					flush[i]++
					sink += flush[i]
				}
				b.StartTimer()
				CPU{}.Conv2dFused(geo, x, p.Value.Data(), ep, y, arena)
			}
			b.ReportMetric(float64(2*l.k*oh*oh*l.c*9)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	_ = sink
}
