package cuda

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/roialign"
)

// TestRoIAlignBadInput: arguments roialign's host kernels reject give an
// error wrapping roialign.ErrInput that names the problem, before any
// device work.
func TestRoIAlignBadInput(t *testing.T) {
	b, f := newFakeBackend(false)
	defer b.Close()
	s := roialign.Shape{N: 2, C: 3, H: 4, W: 5}
	cfg := roialign.Defaults(0.5)
	feat := make([]float32, 2*3*4*5)
	roi := []float32{1, 0, 0, 4, 4}
	out := make([]float32, 3*49)
	nan := float32(math.NaN())
	cases := []struct {
		name     string
		out, in  []float32
		s        roialign.Shape
		rois     []float32
		cfg      roialign.Config
		backward bool
		want     string
	}{
		{"short features", out, feat[1:], s, roi, cfg, false, "features have 119 values"},
		{"zero-size shape", out, nil, roialign.Shape{N: 2, C: 3, H: 0, W: 5}, roi, cfg, false, "positive sizes"},
		{"batch index out of range", out, feat, s, []float32{2, 0, 0, 1, 1}, cfg, false, "batch index 2"},
		{"fractional batch index", out, feat, s, []float32{0.5, 0, 0, 1, 1}, cfg, true, "batch index 0.5"},
		{"NaN coordinate", out, feat, s, []float32{0, 0, nan, 1, 1}, cfg, false, "non-finite coordinate"},
		{"rois not rows of 5", out, feat, s, roi[:4], cfg, false, "multiple of 5"},
		{"output size", out[1:], feat, s, roi, cfg, false, "output has 146 values, want 147"},
		{"output gradient size", out[1:], feat, s, roi, cfg, true, "output gradient has 146 values"},
		{"zero scale", out, feat, s, roi, roialign.Config{OutH: 7, OutW: 7, SpatialScale: 0}, false, "spatial scale"},
		{"adaptive grid too large", make([]float32, 3), feat, s, []float32{0, -1e30, 0, 1e30, 1},
			roialign.Config{OutH: 1, OutW: 1, SpatialScale: 1}, false, "adaptive sampling grid"},
		{"infinite roi extent", make([]float32, 3), feat, s, []float32{0, -3e38, 0, 3e38, 1},
			roialign.Config{OutH: 1, OutW: 1, SpatialScale: 1}, true, "adaptive sampling grid"},
	}
	for _, c := range cases {
		var err error
		if c.backward {
			err = b.RoIAlignBackward(c.in, c.out, c.s, c.rois, c.cfg)
		} else {
			err = b.RoIAlignForward(c.out, c.in, c.s, c.rois, c.cfg)
		}
		if !errors.Is(err, roialign.ErrInput) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "cuda: RoIAlign") {
			t.Errorf("%s: err = %v, want roialign.ErrInput mentioning %q", c.name, err, c.want)
		}
	}
	if len(f.launches) != 0 {
		t.Errorf("%d kernel launches for bad input", len(f.launches))
	}
}

// TestRoIAlignDeviceFailure: a failing launch is returned as an *OpError
// naming the operation (not a panic), recorded for Err, and leaves no
// device buffer behind.
func TestRoIAlignDeviceFailure(t *testing.T) {
	for _, kernel := range []string{"detlab_roialign_layout", "detlab_roialign_forward", "detlab_roialign_backward"} {
		b, f := newFakeBackend(false)
		boom := errors.New("cuLaunchKernel: CUDA_ERROR_LAUNCH_FAILED")
		f.fail["launch:"+kernel] = boom
		s := roialign.Shape{N: 1, C: 2, H: 4, W: 4}
		cfg := roialign.Defaults(1)
		feat, rois := make([]float32, 32), []float32{0, 0, 0, 2, 2}
		pooled := make([]float32, 2*49)
		err := b.RoIAlignForward(pooled, feat, s, rois, cfg)
		if kernel == "detlab_roialign_backward" {
			if err != nil {
				t.Fatalf("forward: %v", err)
			}
			err = b.RoIAlignBackward(feat, pooled, s, rois, cfg)
		}
		var oe *OpError
		if !errors.As(err, &oe) || !errors.Is(err, boom) || !strings.HasPrefix(oe.Op, "RoIAlign") {
			t.Errorf("%s failing: err = %v, want an *OpError wrapping the launch failure", kernel, err)
		}
		if !errors.Is(b.Err(), boom) {
			t.Errorf("%s failing: Err() = %v", kernel, b.Err())
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if f.live() != 0 {
			t.Errorf("%s failing: %d device buffers left after Close", kernel, f.live())
		}
	}
}

// TestRoIAlignListCap: the stencil-list capacity is min(2*grid, size),
// with the adaptive grid taken from the largest roi (plus one).
func TestRoIAlignListCap(t *testing.T) {
	s := roialign.Shape{N: 1, C: 1, H: 40, W: 50}
	cases := []struct {
		name string
		rois []float32
		cfg  roialign.Config
		want int
	}{
		{"ratio 2", []float32{0, 0, 0, 10, 10}, roialign.Defaults(1), 4},
		{"ratio beyond the map", []float32{0, 0, 0, 10, 10}, roialign.Config{OutH: 2, OutW: 2, SamplingRatio: 30, SpatialScale: 1}, 50},
		{"adaptive: 70/7 = 10", []float32{0, 0, 0, 70, 14, 0, 1, 1, 2, 2}, roialign.Config{OutH: 7, OutW: 7, SpatialScale: 1}, 22},
		{"adaptive: tiny rois", []float32{0, 1, 1, 1.2, 1.2}, roialign.Config{OutH: 7, OutW: 7, SpatialScale: 1}, 4},
		{"adaptive: the map bounds it", []float32{0, 0, 0, 5000, 5000}, roialign.Config{OutH: 2, OutW: 2, SpatialScale: 1}, 50},
		{"adaptive aligned inverted", []float32{0, 9, 9, 1, 1}, roialign.Config{OutH: 2, OutW: 2, SpatialScale: 1, Aligned: true}, 2},
		{"no rois", nil, roialign.Config{OutH: 2, OutW: 2, SpatialScale: 1}, 2},
	}
	for _, c := range cases {
		got, err := roiAlignCap(c.rois, s, c.cfg)
		if err != nil || got != c.want {
			t.Errorf("%s: roiAlignCap = %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}
