package hostcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/detlab/detlab/lib/roialign"
)

// roiCase is one RoIAlign problem: features (N, C, H, W), rois (K, 5) and
// the configuration.
type roiCase struct {
	name string
	s    roialign.Shape
	rois []float32
	cfg  roialign.Config
}

// roiListCap is the stencil-list capacity lib/cuda passes: min(2*grid,
// size) with the adaptive grid computed per roi (plus one). A capacity too
// small would drop pixels and the comparison would fail, so this also
// checks the bound.
func roiListCap(c roiCase) int {
	size := max(c.s.H, c.s.W)
	if c.cfg.SamplingRatio > 0 {
		return max(1, min(2*c.cfg.SamplingRatio, size))
	}
	var off float32
	if c.cfg.Aligned {
		off = 0.5
	}
	grid := 0.0
	for i := 0; i+5 <= len(c.rois); i += 5 {
		r := c.rois[i : i+5]
		sc := c.cfg.SpatialScale
		rw := float32(r[3]*sc-off) - float32(r[1]*sc-off)
		rh := float32(r[4]*sc-off) - float32(r[2]*sc-off)
		if !c.cfg.Aligned {
			rw, rh = max(rw, 1), max(rh, 1)
		}
		grid = max(grid, math.Ceil(float64(rh/float32(c.cfg.OutH))), math.Ceil(float64(rw/float32(c.cfg.OutW))))
	}
	return max(1, min(2*(int(grid)+1), size))
}

// randRoi draws a roi in image coordinates (scale 1/sc of the feature
// map): inside, partly or fully outside, tiny, inverted (x2 < x1), or on
// integer feature coordinates (zero-weight neighbours).
func randRoi(rng *rand.Rand, n, h, w int, scale float32) []float32 {
	fw, fh := float32(w)/scale, float32(h)/scale
	u := func(lo, hi float32) float32 { return lo + rng.Float32()*(hi-lo) }
	b := float32(rng.IntN(n))
	switch rng.IntN(6) {
	case 0: // partly outside
		return []float32{b, u(-fw/2, fw/2), u(-fh/2, fh/2), u(fw/2, 1.5*fw), u(fh/2, 1.5*fh)}
	case 1: // fully outside
		return []float32{b, u(1.2*fw, 2*fw), u(-2*fh, -1.3*fh), u(2*fw, 3*fw), u(-1.2*fh, -1.1*fh)}
	case 2: // tiny
		x, y := u(0, fw), u(0, fh)
		return []float32{b, x, y, x + u(0, 0.3/scale), y + u(0, 0.3/scale)}
	case 3: // inverted
		x, y := u(0, fw), u(0, fh)
		return []float32{b, x, y, x - u(0, fw/2), y - u(0, fh/2)}
	case 4: // integer feature coordinates
		x, y := float32(rng.IntN(w)), float32(rng.IntN(h))
		return []float32{b, x / scale, y / scale, (x + float32(1+rng.IntN(w))) / scale, (y + float32(1+rng.IntN(h))) / scale}
	default:
		x1, y1 := u(0, fw), u(0, fh)
		return []float32{b, x1, y1, u(x1, fw), u(y1, fh)}
	}
}

func roiCases(rng *rand.Rand, random int) []roiCase {
	cases := []roiCase{
		{"empty roi list", roialign.Shape{N: 2, C: 3, H: 5, W: 4}, nil, roialign.Defaults(0.25)},
		{"faster r-cnn", roialign.Shape{N: 2, C: 8, H: 10, W: 14}, nil, roialign.Defaults(1.0 / 32)},
		{"1x1 map", roialign.Shape{N: 1, C: 2, H: 1, W: 1}, []float32{0, -3, -3, 5, 5, 0, 0.2, 0.3, 0.4, 0.9}, roialign.Defaults(1)},
		{"1-row map aligned adaptive", roialign.Shape{N: 1, C: 2, H: 1, W: 9},
			[]float32{0, 0, 0, 40, 3, 0, 7, -1, 2, 0.5, 0, 8.5, 0.5, 8.5, 0.5}, roialign.Config{OutH: 2, OutW: 3, SpatialScale: 1, Aligned: true}},
		{"large adaptive grid", roialign.Shape{N: 1, C: 3, H: 6, W: 7},
			[]float32{0, -30, -20, 400, 300, 0, 1, 1, 2, 2}, roialign.Config{OutH: 2, OutW: 2, SpatialScale: 0.5}},
	}
	for i := 0; i < 45; i++ { // more rois than the layout launch's 32 threads
		c := &cases[1]
		c.rois = append(c.rois, randRoi(rng, c.s.N, c.s.H, c.s.W, c.cfg.SpatialScale)...)
	}
	for i := 0; i < random; i++ {
		s := roialign.Shape{N: 1 + rng.IntN(3), C: 1 + rng.IntN(5), H: 1 + rng.IntN(12), W: 1 + rng.IntN(12)}
		cfg := roialign.Config{OutH: 1 + rng.IntN(7), OutW: 1 + rng.IntN(7), SamplingRatio: rng.IntN(4) - 1,
			SpatialScale: []float32{1, 0.5, 0.25, 1.0 / 16}[rng.IntN(4)], Aligned: rng.IntN(2) == 0}
		var rois []float32
		for range rng.IntN(10) {
			rois = append(rois, randRoi(rng, s.N, s.H, s.W, cfg.SpatialScale)...)
		}
		cases = append(cases, roiCase{fmt.Sprintf("random %d", i), s, rois, cfg})
	}
	return cases
}

// TestRoIAlign runs detlab_roialign_layout and then detlab_roialign_forward
// and detlab_roialign_backward on the geometry it wrote, and compares them
// with lib/roialign's ForwardSlice and BackwardSlice bit for bit: the
// kernels use lib/roialign's stencils and summation order (the backward
// gathers per gradient element in the host scatter's (roi, ph, pw) order,
// without atomics). Features hold an Inf and a NaN (zero-weight taps must
// turn them into NaN exactly as the host does); outputs start as garbage
// (all must be written) and gradients as random values (the backward adds).
func TestRoIAlign(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, c := range roiCases(rng, 40) {
		t.Run(fmt.Sprintf("%s %+v %+v K=%d", c.name, c.s, c.cfg, len(c.rois)/5), func(t *testing.T) {
			s, cfg, k := c.s, c.cfg, len(c.rois)/5
			x := randn(rng, s.N*s.C*s.H*s.W)
			if len(x) > 8 && rng.IntN(2) == 0 {
				x[rng.IntN(len(x))] = float32(math.Inf(1))
				x[rng.IntN(len(x))] = float32(math.NaN())
			}
			nout := k * s.C * cfg.OutH * cfg.OutW
			want := make([]float32, nout)
			if err := roialign.ForwardSlice(want, x, s, c.rois, cfg); err != nil {
				t.Fatal(err)
			}
			capacity := roiListCap(c)
			geomInts := 6*k + k*(cfg.OutH+cfg.OutW)*(1+2*capacity)
			grid, block := smallGrid(rng, k)
			if k > 32 {
				grid, block = 1, 32 // the layout's grid-stride loop takes several turns
			}
			out := launch(t, "detlab_roialign_layout", grid, block,
				[]int64{int64(k), int64(s.H), int64(s.W), int64(cfg.OutH), int64(cfg.OutW), int64(cfg.SamplingRatio),
					fbits(cfg.SpatialScale), map[bool]int64{false: 0, true: 1}[cfg.Aligned], int64(capacity)},
				f32b(c.rois), make([]byte, 4*geomInts))
			geom := out[1]
			dims := []int64{int64(s.N), int64(s.C), int64(s.H), int64(s.W), int64(k), int64(cfg.OutH), int64(cfg.OutW), int64(capacity)}

			y := make([]float32, nout)
			for i := range y {
				y[i] = float32(math.NaN())
			}
			grid, block = smallGrid(rng, nout)
			out = launch(t, "detlab_roialign_forward", grid, block, dims, f32b(x), geom, f32b(y))
			checkExact(t, "forward", bf32(t, out[2]), want)

			dy := randn(rng, nout)
			dx0 := randn(rng, len(x))
			wantDx := append([]float32(nil), dx0...)
			if err := roialign.BackwardSlice(wantDx, dy, s, c.rois, cfg); err != nil {
				t.Fatal(err)
			}
			grid, block = smallGrid(rng, len(x))
			out = launch(t, "detlab_roialign_backward", grid, block, dims, f32b(dy), geom, f32b(dx0))
			checkExact(t, "backward", bf32(t, out[2]), wantDx)
		})
	}
}
