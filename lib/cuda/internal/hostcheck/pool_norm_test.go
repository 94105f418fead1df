package hostcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/detlab/detlab/lib/nn"
)

// poolGeoms returns torch-valid max-pool geometries (padding at most half
// the kernel): ResNet's stem pool and random ones.
func poolGeoms(rng *rand.Rand, random int) []nn.PoolGeom {
	mk := func(planes, h, w, kh, kw, sh, sw, ph, pw int) nn.PoolGeom {
		return nn.PoolGeom{Planes: planes, H: h, W: w, KH: kh, KW: kw, SH: sh, SW: sw, PH: ph, PW: pw,
			OH: (h+2*ph-kh)/sh + 1, OW: (w+2*pw-kw)/sw + 1}
	}
	g := []nn.PoolGeom{mk(3, 9, 8, 3, 3, 2, 2, 1, 1), mk(2, 4, 4, 2, 2, 2, 2, 0, 0), mk(1, 1, 1, 1, 1, 1, 1, 0, 0)}
	for len(g) < 3+random {
		planes, h, w := 1+rng.IntN(4), 1+rng.IntN(9), 1+rng.IntN(9)
		kh, kw := 1+rng.IntN(4), 1+rng.IntN(4)
		sh, sw := 1+rng.IntN(3), 1+rng.IntN(3)
		ph, pw := rng.IntN(kh/2+1), rng.IntN(kw/2+1)
		if h+2*ph < kh || w+2*pw < kw {
			continue
		}
		g = append(g, mk(planes, h, w, kh, kw, sh, sw, ph, pw))
	}
	return g
}

func poolScalars(geo nn.PoolGeom) []int64 {
	return []int64{int64(geo.Planes), int64(geo.H), int64(geo.W), int64(geo.KH), int64(geo.KW),
		int64(geo.SH), int64(geo.SW), int64(geo.PH), int64(geo.PW), int64(geo.OH), int64(geo.OW)}
}

// poolInput draws small integers (many ties, to test "first maximum"),
// with some -Inf and, when nans, some NaN.
func poolInput(rng *rand.Rand, n int, nans bool) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch r := rng.IntN(40); {
		case r == 0:
			x[i] = float32(math.Inf(-1))
		case r == 1 && nans:
			x[i] = float32(math.NaN())
		default:
			x[i] = float32(rng.IntN(5) - 2)
		}
	}
	return x
}

// TestMaxPool compares detlab_maxpool2d's values and argmax (and its
// arg == NULL form) with CPU.MaxPool2d exactly, then detlab_maxpool2d_backward
// with CPU.MaxPool2dBackward (integer gradients: sums exact in any order,
// so the atomics' order cannot matter).
func TestMaxPool(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for i, geo := range poolGeoms(rng, 30) {
		t.Run(fmt.Sprintf("%d %+v", i, geo), func(t *testing.T) {
			hw, ohw := geo.H*geo.W, geo.OH*geo.OW
			x := poolInput(rng, geo.Planes*hw, i%2 == 1)
			y, arg := make([]float32, geo.Planes*ohw), make([]int32, geo.Planes*ohw)
			nn.CPU{}.MaxPool2d(geo, x, y, arg)
			grid, block := smallGrid(rng, geo.Planes*ohw)
			out := launch(t, "detlab_maxpool2d", grid, block, poolScalars(geo), f32b(x), f32b(make([]float32, len(y))), i32b(make([]int32, len(arg))))
			checkExact(t, "y", bf32(t, out[1]), y)
			if got := bi32(t, out[2]); fmt.Sprint(got) != fmt.Sprint(arg) {
				t.Errorf("arg = %v, want %v", got, arg)
			}
			out = launch(t, "detlab_maxpool2d", grid, block, poolScalars(geo), f32b(x), f32b(make([]float32, len(y))), nil)
			checkExact(t, "y without arg", bf32(t, out[1]), y)

			dy, dx0 := make([]float32, len(y)), make([]float32, geo.Planes*hw)
			for j := range dy {
				dy[j] = float32(rng.IntN(9) - 4)
			}
			for j := range dx0 {
				dx0[j] = float32(rng.IntN(9) - 4)
			}
			want := append([]float32(nil), dx0...)
			nn.CPU{}.MaxPool2dBackward(geo, dy, want, arg)
			out = launch(t, "detlab_maxpool2d_backward", grid, block,
				[]int64{int64(geo.Planes), int64(geo.H), int64(geo.W), int64(geo.OH), int64(geo.OW)},
				f32b(dy), f32b(dx0), i32b(arg))
			checkExact(t, "dx", bf32(t, out[1]), want)
		})
	}
}

// TestMaxPoolBackwardBadArg: an argmax outside its plane (a corrupt or
// foreign arg buffer) is skipped, never written out of bounds.
func TestMaxPoolBackwardBadArg(t *testing.T) {
	const planes, h, w, oh, ow = 2, 3, 3, 1, 2
	dy := []float32{1, 2, 3, 4}
	// Plane 0: 9 (would land on plane 1's first element), 4; plane 1: -1
	// (would land on plane 0's last), 0.
	arg := []int32{9, 4, -1, 0}
	want := make([]float32, planes*h*w)
	want[4] = 2
	want[h*w+0] = 4
	out := launch(t, "detlab_maxpool2d_backward", 1, 32, []int64{planes, h, w, oh, ow},
		f32b(dy), f32b(make([]float32, planes*h*w)), i32b(arg))
	checkExact(t, "dx", bf32(t, out[1]), want)
}

// TestChannelStats compares detlab_channel_stats (block tree reduction in
// float64, run with real barriers) with CPU.ChannelStats, for the contract's
// launch (C blocks of 256) and others: fewer blocks than channels, a block
// size that is not a power of two, one thread, 1024 threads. Both sum in
// float64 in different orders: relative agreement 1e-12.
func TestChannelStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	launches := [][2]int{{0, 256}, {1, 256}, {2, 100}, {0, 1}, {3, 1024}, {0, 256}}
	for i, l := range launches {
		n, c, hw := 1+rng.IntN(3), 1+rng.IntN(6), 1+rng.IntN(400)
		grid := l[0]
		if grid == 0 {
			grid = c
		}
		t.Run(fmt.Sprintf("grid %d block %d N=%d C=%d HW=%d", grid, l[1], n, c, hw), func(t *testing.T) {
			x := randn(rng, n*c*hw)
			if i == len(launches)-1 { // a large mean over a small spread: the two-pass case
				for j := range x {
					x[j] = 1000 + x[j]/100
				}
			}
			mean, variance := make([]float64, c), make([]float64, c)
			nn.CPU{}.ChannelStats(x, n, c, hw, mean, variance)
			out := launch(t, "detlab_channel_stats", grid, l[1], []int64{int64(n), int64(c), int64(hw)},
				f32b(x), make([]byte, 8*c), make([]byte, 8*c))
			gm, gv := bf64(t, out[1]), bf64(t, out[2])
			for ch := 0; ch < c; ch++ {
				if math.Abs(gm[ch]-mean[ch]) > 1e-12*(1+math.Abs(mean[ch])) || math.Abs(gv[ch]-variance[ch]) > 1e-12*(1+variance[ch]) {
					t.Errorf("channel %d: mean %v var %v, want %v %v", ch, gm[ch], gv[ch], mean[ch], variance[ch])
				}
			}
		})
	}
}

// TestChannelAffine compares detlab_channel_affine with CPU.ChannelAffine
// bit for bit, with and without the fused ReLU, NaN and Inf included.
func TestChannelAffine(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for i := 0; i < 8; i++ {
		n, c, hw := 1+rng.IntN(3), 1+rng.IntN(6), 1+rng.IntN(50)
		relu := i%2 == 0
		x := randn(rng, n*c*hw)
		x[rng.IntN(len(x))] = float32(math.NaN())
		x[rng.IntN(len(x))] = float32(math.Inf(1))
		x[rng.IntN(len(x))] = float32(math.Inf(-1))
		scale, shift := randn(rng, c), randn(rng, c)
		want := make([]float32, len(x))
		nn.CPU{}.ChannelAffine(x, want, n, c, hw, scale, shift, relu)
		r := int64(0)
		if relu {
			r = 1
		}
		grid, block := smallGrid(rng, len(x))
		out := launch(t, "detlab_channel_affine", grid, block, []int64{int64(n), int64(c), int64(hw), r},
			f32b(x), f32b(make([]float32, len(x))), f32b(scale), f32b(shift))
		checkExact(t, fmt.Sprintf("affine N=%d C=%d HW=%d relu=%v", n, c, hw, relu), bf32(t, out[1]), want)
	}
}
