package compute_test

import (
	"math/rand"
	"testing"
	"time"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/nn"
)

// resnet18ConvShapes are ResNet18's convolutions at 224x224, batch 1, with
// how many times each runs in a forward pass and whether a residual is
// added (the second convolution of a block).
var resnet18ConvShapes = []struct {
	name                                string
	c, h, k, kernel, stride, pad, times int
	residual                            bool
}{
	{"conv1", 3, 224, 64, 7, 2, 3, 1, false},
	{"layer1.a", 64, 56, 64, 3, 1, 1, 2, false},
	{"layer1.b", 64, 56, 64, 3, 1, 1, 2, true},
	{"layer2.0a", 64, 56, 128, 3, 2, 1, 1, false},
	{"layer2.ds", 64, 56, 128, 1, 2, 0, 1, false},
	{"layer2.a", 128, 28, 128, 3, 1, 1, 1, false},
	{"layer2.b", 128, 28, 128, 3, 1, 1, 2, true},
	{"layer3.0a", 128, 28, 256, 3, 2, 1, 1, false},
	{"layer3.ds", 128, 28, 256, 1, 2, 0, 1, false},
	{"layer3.a", 256, 14, 256, 3, 1, 1, 1, false},
	{"layer3.b", 256, 14, 256, 3, 1, 1, 2, true},
	{"layer4.0a", 256, 14, 512, 3, 2, 1, 1, false},
	{"layer4.ds", 256, 14, 512, 1, 2, 0, 1, false},
	{"layer4.a", 512, 7, 512, 3, 1, 1, 1, false},
	{"layer4.b", 512, 7, 512, 3, 1, 1, 2, true},
}

// BenchmarkResNet18Convs runs every convolution of a ResNet18 forward at
// 224x224, batch 1, as eval ConvBN runs them (nn.CPU.Conv2dFused with the
// BatchNorm folded into scale and shift, the block's residual and ReLU),
// once per DETLAB_CONV choice: go (im2col + Go GEMM) and onednn (oneDNN's
// primitives, NCHW reordered to its blocked layouts and back per layer,
// weights reordered once into the parameter's WeightCache), in float32
// and under bfloat16 autocast (bf16-go: the Go VDPBF16PS GEMM, or its
// emulation; bf16-onednn: oneDNN's bfloat16 primitives,
// avx512_core_bf16 or AMX). The graphs are not inference ones, so
// float32 runs no Winograd here. Reported: ms per forward's convolutions
// and GFLOP/s.
//
//	go test -run X -bench ResNet18Convs -benchtime 20x ./lib/compute
func BenchmarkResNet18Convs(b *testing.B) {
	type layer struct {
		geo   nn.ConvGeom
		x, y  []float32
		w     *nn.Param
		ep    nn.ConvEpilogue
		times int
		flops float64
	}
	rng := rand.New(rand.NewSource(1))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	var layers []layer
	var total float64
	for _, s := range resnet18ConvShapes {
		oh := (s.h+2*s.pad-s.kernel)/s.stride + 1
		geo := nn.ConvGeom{N: 1, C: s.c, H: s.h, W: s.h, K: s.k, KH: s.kernel, KW: s.kernel, SH: s.stride, SW: s.stride, PH: s.pad, PW: s.pad, OH: oh, OW: oh}
		w := nn.NewParam("w", s.k, s.c, s.kernel, s.kernel)
		copy(w.Value.Data(), fill(s.k*s.c*s.kernel*s.kernel))
		geo.Weights = w.Cache()
		l := layer{geo: geo, x: fill(s.c * s.h * s.h), y: make([]float32, s.k*oh*oh), w: w, times: s.times,
			ep: nn.ConvEpilogue{Scale: fill(s.k), Shift: fill(s.k), ReLU: true}}
		if s.residual {
			l.ep.Residual = fill(s.k * oh * oh)
		}
		l.flops = 2 * float64(s.k*oh*oh*s.c*s.kernel*s.kernel*s.times)
		total += l.flops
		layers = append(layers, l)
	}
	for _, m := range []struct {
		name, conv string
		prec       nn.Precision
	}{{"go", "go", nn.Float32}, {"onednn", "onednn", nn.Float32}, {"bf16-go", "go", nn.BFloat16}, {"bf16-onednn", "onednn", nn.BFloat16}} {
		b.Run(m.name, func(b *testing.B) {
			restore := compute.SetConvChoice(m.conv)
			defer restore()
			if m.conv == "onednn" && compute.ConvBackend()[:6] != "onednn" {
				b.Skipf("oneDNN absent, install libdnnl2: %s", compute.ConvBackend())
			}
			b.Logf("%s | %s | %s", compute.CPU(), compute.ConvBackend(), compute.BF16Backend())
			if m.conv == "onednn" && m.prec == nn.BFloat16 {
				s := layers[1].geo
				impl, err := compute.ConvOneDNNImpl(compute.ConvShape{N: s.N, C: s.C, H: s.H, W: s.W, K: s.K, KH: s.KH, KW: s.KW,
					SH: s.SH, SW: s.SW, PH: s.PH, PW: s.PW, OH: s.OH, OW: s.OW, BF16: true}, compute.Epilogue{Scale: []float32{}})
				b.Logf("oneDNN bfloat16 implementation (layer1): %s %v", impl, err)
			}
			arena := nn.NewArena()
			run := func() {
				for _, l := range layers {
					geo := l.geo
					geo.Precision = m.prec
					for range l.times {
						nn.CPU{}.Conv2dFused(geo, l.x, l.w.Value.Data(), l.ep, l.y, arena)
					}
				}
			}
			run() // primitives, packed or reordered weights
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				run()
			}
			sec := time.Since(start).Seconds() / float64(b.N)
			b.ReportMetric(sec*1e3, "ms/fwd-convs")
			b.ReportMetric(total/sec/1e9, "GFLOP/s")
		})
	}
}
