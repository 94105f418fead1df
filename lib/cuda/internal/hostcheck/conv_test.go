package hostcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/detlab/detlab/lib/nn"
)

// convGeoms returns the named ResNet/Faster R-CNN geometries and random
// ones (rectangular kernels, strides and paddings included), N = 1.
func convGeoms(rng *rand.Rand, random int) map[string]nn.ConvGeom {
	mk := func(c, h, w, kh, kw, sh, sw, ph, pw int) nn.ConvGeom {
		return nn.ConvGeom{N: 1, C: c, H: h, W: w, KH: kh, KW: kw, SH: sh, SW: sw, PH: ph, PW: pw,
			OH: (h+2*ph-kh)/sh + 1, OW: (w+2*pw-kw)/sw + 1}
	}
	g := map[string]nn.ConvGeom{
		"stem 7x7/2 pad 3":     mk(3, 13, 11, 7, 7, 2, 2, 3, 3),
		"3x3/1 pad 1":          mk(4, 6, 7, 3, 3, 1, 1, 1, 1),
		"3x3/2 pad 1":          mk(2, 9, 8, 3, 3, 2, 2, 1, 1),
		"1x1/2 downsample":     mk(3, 7, 6, 1, 1, 2, 2, 0, 0),
		"1x1/1 pointwise":      mk(3, 4, 5, 1, 1, 1, 1, 0, 0),
		"kernel = input":       mk(2, 3, 4, 3, 4, 1, 1, 0, 0),
		"padding over kernel":  mk(1, 2, 2, 2, 2, 1, 1, 2, 2),
		"1x1 image, 3x3 pad 1": mk(5, 1, 1, 3, 3, 1, 1, 1, 1),
	}
	for i := 0; len(g) < 8+random; i++ {
		c, h, w := 1+rng.IntN(4), 1+rng.IntN(10), 1+rng.IntN(10)
		kh, kw := 1+rng.IntN(4), 1+rng.IntN(4)
		sh, sw := 1+rng.IntN(3), 1+rng.IntN(3)
		ph, pw := rng.IntN(kh), rng.IntN(kw)
		if h+2*ph < kh || w+2*pw < kw {
			continue
		}
		geo := mk(c, h, w, kh, kw, sh, sw, ph, pw)
		g[fmt.Sprintf("random %d: %+v", i, geo)] = geo
	}
	return g
}

// identity returns the (n, n) identity: as a convolution weight with
// K = C*KH*KW it makes Conv2d output the im2col matrix itself, exactly.
func identity(n int) []float32 {
	w := make([]float32, n*n)
	for i := 0; i < n; i++ {
		w[i*n+i] = 1
	}
	return w
}

func geoScalars(geo nn.ConvGeom) []int64 {
	return []int64{int64(geo.C), int64(geo.H), int64(geo.W), int64(geo.KH), int64(geo.KW),
		int64(geo.SH), int64(geo.SW), int64(geo.PH), int64(geo.PW), int64(geo.OH), int64(geo.OW)}
}

// TestIm2col compares detlab_im2col with lib/nn's im2col, read out of
// CPU.Conv2d with an identity weight (K = C*KH*KW), bit for bit.
func TestIm2col(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, geo := range convGeoms(rng, 24) {
		t.Run(name, func(t *testing.T) {
			ckk, ohw := geo.C*geo.KH*geo.KW, geo.OH*geo.OW
			x := randn(rng, geo.C*geo.H*geo.W)
			g := geo
			g.K = ckk
			want := make([]float32, ckk*ohw)
			nn.CPU{}.Conv2d(g, x, identity(ckk), nil, want, nn.NewArena())
			grid, block := smallGrid(rng, ckk*ohw)
			out := launch(t, "detlab_im2col", grid, block, geoScalars(geo), f32b(x), f32b(make([]float32, ckk*ohw)))
			checkExact(t, "col", bf32(t, out[1]), want)
		})
	}
}

// TestCol2im compares detlab_col2im with lib/nn's col2im, read out of
// CPU.Conv2dBackward with an identity weight, bit for bit: both add the
// contributions to each input element in (kh, kw) order onto dx.
func TestCol2im(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for name, geo := range convGeoms(rng, 24) {
		t.Run(name, func(t *testing.T) {
			ckk, ohw, chw := geo.C*geo.KH*geo.KW, geo.OH*geo.OW, geo.C*geo.H*geo.W
			col := randn(rng, ckk*ohw)
			dx0 := randn(rng, chw)
			g := geo
			g.K = ckk
			want := append([]float32(nil), dx0...)
			nn.CPU{}.Conv2dBackward(g, make([]float32, chw), identity(ckk), col, want, nil, nil, nn.NewArena())
			grid, block := smallGrid(rng, chw)
			out := launch(t, "detlab_col2im", grid, block, geoScalars(geo), f32b(col), f32b(dx0))
			checkExact(t, "dx", bf32(t, out[1]), want)
		})
	}
}

func TestBiasAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 8; i++ {
		n, k, hw := 1+rng.IntN(3), 1+rng.IntN(5), 1+rng.IntN(40)
		y, bias := randn(rng, n*k*hw), randn(rng, k)
		want := append([]float32(nil), y...)
		for j := range want {
			want[j] += bias[(j/hw)%k]
		}
		grid, block := smallGrid(rng, n*k*hw)
		out := launch(t, "detlab_bias_add", grid, block, []int64{int64(n), int64(k), int64(hw)}, f32b(y), f32b(bias))
		checkExact(t, fmt.Sprintf("bias_add N=%d K=%d HW=%d", n, k, hw), bf32(t, out[0]), want)
	}
}

// TestChannelSumAdd checks the bias gradient against a float64 sum: the
// kernel adds float32(sum over the batch) once, where the CPU adds one
// float32 sum per image, so they may differ in the last bit.
func TestChannelSumAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	launches := [][2]int{{0, 256}, {1, 256}, {2, 100}, {0, 1}, {3, 1024}}
	for _, l := range launches {
		n, c, hw := 1+rng.IntN(3), 1+rng.IntN(6), 1+rng.IntN(300)
		grid := l[0]
		if grid == 0 {
			grid = c
		}
		x, out0 := randn(rng, n*c*hw), randn(rng, c)
		got := bf32(t, launch(t, "detlab_channel_sum_add", grid, l[1], []int64{int64(n), int64(c), int64(hw)}, f32b(x), f32b(out0))[1])
		for ch := 0; ch < c; ch++ {
			var s, abs float64
			for b := 0; b < n; b++ {
				for _, v := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
					s += float64(v)
					abs += math.Abs(float64(v))
				}
			}
			want := float64(out0[ch]) + s
			if d := math.Abs(float64(got[ch]) - want); d > 1e-6*(abs+math.Abs(float64(out0[ch]))) {
				t.Errorf("grid %d block %d N=%d C=%d HW=%d: out[%d] = %v, want %v", grid, l[1], n, c, hw, ch, got[ch], want)
			}
		}
	}
}
