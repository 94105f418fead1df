package cuda

import (
	"errors"
	"fmt"
	"math"

	"github.com/detlab/detlab/lib/roialign"
)

// RoIAlign on the device (kernels/roialign.cu): a layout kernel turns the
// rois into per-roi stencils (the rows and columns each output bin samples,
// with their summed interpolation weights, as lib/roialign computes them),
// which the forward kernel sums per output value and the backward kernel
// gathers per feature-gradient value. Both give lib/roialign's host results
// bit for bit; the backward uses no atomics, so it is deterministic.

// maxRoIAlignGrid bounds the adaptive sampling grid (ceil(roi extent /
// output size) per axis): beyond it float32 sample indices are no longer
// exact and the per-roi loop would run for minutes.
const maxRoIAlignGrid = 1 << 24

// roiAlignArgs checks a RoIAlign call's arguments (the feature map or its
// gradient of shape s, rois, and the pooled values or their gradient,
// named what) and returns the number of rois and the layout's per-roi
// capacity; errors wrap roialign.ErrInput and name op.
func roiAlignArgs(op, what string, features, pooled []float32, s roialign.Shape, rois []float32, cfg roialign.Config) (k, capacity int, err error) {
	k, err = roialign.Check(features, s, rois, cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("cuda: %s: %w", op, err)
	}
	if want := k * s.C * cfg.OutH * cfg.OutW; len(pooled) != want {
		return 0, 0, fmt.Errorf("cuda: %s: %w: %s has %d values, want %d (K=%d, C=%d, %dx%d)", op, roialign.ErrInput, what, len(pooled), want, k, s.C, cfg.OutH, cfg.OutW)
	}
	if capacity, err = roiAlignCap(rois[:5*k], s, cfg); err != nil {
		return 0, 0, fmt.Errorf("cuda: %s: %w", op, err)
	}
	return k, capacity, nil
}

// RoIAlignForward implements roialign.Backend: out (K, C, OutH, OutW) is
// overwritten with RoIAlign of features (shape s) over rois (K rows of
// [batch, x1, y1, x2, y2]), as roialign.ForwardSlice, by the layout and
// forward kernels. Bad arguments give an error wrapping roialign.ErrInput;
// a device failure gives an *OpError.
func (b *Backend) RoIAlignForward(out, features []float32, s roialign.Shape, rois []float32, cfg roialign.Config) error {
	const op = "RoIAlignForward"
	k, capacity, err := roiAlignArgs(op, "output", features, out, s, rois, cfg)
	if err != nil || k == 0 {
		return err
	}
	return b.runErr(op, func(sc *scope) {
		px, py := sc.f32(features, read), sc.f32(out, write)
		geom := sc.roiAlignLayout(rois[:5*k], k, s, cfg, capacity)
		sc.launch("detlab_roialign_forward", gridFor(len(out)), pArg(px), pArg(geom), pArg(py),
			iArg(s.N), iArg(s.C), iArg(s.H), iArg(s.W), iArg(k), iArg(cfg.OutH), iArg(cfg.OutW), iArg(capacity))
	})
}

// RoIAlignBackward implements roialign.Backend: the gradient of RoIAlign
// for gradOut (K, C, OutH, OutW) is ADDED into gradFeatures (shape s), as
// roialign.BackwardSlice, by the layout and backward kernels (one thread
// per pixel of 4 channels, summing in the host's order: bit-identical and
// deterministic). Errors as RoIAlignForward's.
func (b *Backend) RoIAlignBackward(gradFeatures, gradOut []float32, s roialign.Shape, rois []float32, cfg roialign.Config) error {
	const op = "RoIAlignBackward"
	k, capacity, err := roiAlignArgs(op, "output gradient", gradFeatures, gradOut, s, rois, cfg)
	if err != nil || k == 0 {
		return err
	}
	return b.runErr(op, func(sc *scope) {
		pdy, pdx := sc.f32(gradOut, read), sc.f32(gradFeatures, readWrite)
		geom := sc.roiAlignLayout(rois[:5*k], k, s, cfg, capacity)
		sc.launch("detlab_roialign_backward", gridFor(s.N*ceilDiv(s.C, roiAlignBackwardChannels)*s.H*s.W), pArg(pdy), pArg(geom), pArg(pdx),
			iArg(s.N), iArg(s.C), iArg(s.H), iArg(s.W), iArg(k), iArg(cfg.OutH), iArg(cfg.OutW), iArg(capacity))
	})
}

var _ roialign.Backend = (*Backend)(nil)

// roiAlignBackwardChannels is how many channels of a pixel one thread of
// detlab_roialign_backward serves (DETLAB_ROIALIGN_CHANNELS).
const roiAlignBackwardChannels = 4

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// roiAlignLayout stages the rois and runs the layout kernel into a device
// scratch buffer, whose address it returns.
func (s *scope) roiAlignLayout(rois []float32, k int, sh roialign.Shape, cfg roialign.Config, capacity int) uint64 {
	pr := s.f32(rois, read)
	geom := s.temp(4 * roiAlignGeomInts(k, cfg, capacity))
	s.launch("detlab_roialign_layout", gridFor(k), pArg(pr), pArg(geom), iArg(k), iArg(sh.H), iArg(sh.W),
		iArg(cfg.OutH), iArg(cfg.OutW), iArg(cfg.SamplingRatio), fArg(cfg.SpatialScale), bArg(cfg.Aligned), iArg(capacity))
	return geom
}

// roiAlignGeomInts is the size in ints of the layout kernel's output for k
// rois: 6 per roi, then OutH+OutW lists of 1+2*capacity (kernels.h).
func roiAlignGeomInts(k int, cfg roialign.Config, capacity int) int {
	return 6*k + k*(cfg.OutH+cfg.OutW)*(1+2*capacity)
}

// roiAlignCap returns the capacity of one stencil list: the most distinct
// pixels one output row's (or column's) samples can touch, min(2*grid,
// size) (each sample touches at most two, and there are size pixels). For
// the adaptive ratio the grid is computed per roi as the kernel does, plus
// one against rounding. An adaptive grid beyond maxRoIAlignGrid is an error
// wrapping roialign.ErrInput.
func roiAlignCap(rois []float32, s roialign.Shape, cfg roialign.Config) (int, error) {
	size := max(s.H, s.W)
	if cfg.SamplingRatio > 0 {
		return max(1, min(2*cfg.SamplingRatio, size)), nil
	}
	var offset float32
	if cfg.Aligned {
		offset = 0.5
	}
	grid := 0.0
	for i := 0; i+5 <= len(rois); i += 5 {
		r := rois[i : i+5]
		roiW := float32(r[3]*cfg.SpatialScale-offset) - float32(r[1]*cfg.SpatialScale-offset)
		roiH := float32(r[4]*cfg.SpatialScale-offset) - float32(r[2]*cfg.SpatialScale-offset)
		if !cfg.Aligned {
			roiW, roiH = max(roiW, 1), max(roiH, 1)
		}
		gh := math.Ceil(float64(roiH / float32(cfg.OutH)))
		gw := math.Ceil(float64(roiW / float32(cfg.OutW)))
		g := max(gh, gw)
		if !(g <= maxRoIAlignGrid) {
			return 0, fmt.Errorf("%w: roi %d (%v) needs an adaptive sampling grid of %v, the GPU kernels take at most %d", roialign.ErrInput, i/5, r, g, maxRoIAlignGrid)
		}
		grid = max(grid, g)
	}
	return max(1, min(2*(int(grid)+1), size)), nil
}

// runErr is run for operations with an error result: a device failure is
// returned as its *OpError instead of panicking.
func (b *Backend) runErr(op string, body func(s *scope)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			var oe *OpError
			if e, ok := r.(error); !ok || !errors.As(e, &oe) {
				panic(r)
			}
			err = oe
		}
	}()
	b.run(op, body)
	return nil
}
