package roialign

import (
	"errors"
	"fmt"
	"math"

	"github.com/detlab/detlab/lib/tensor"
)

// ErrInput is wrapped by every error about a bad argument (shapes, roi
// values, configuration), so callers can test errors.Is(err, ErrInput).
var ErrInput = errors.New("roialign: bad input")

// Config holds torchvision.ops.roi_align's parameters.
type Config struct {
	// OutH and OutW are the pooled output size (torchvision's output_size);
	// Faster R-CNN uses 7x7. Both must be positive.
	OutH, OutW int
	// SamplingRatio is the number of sampling points per bin along each
	// axis; 0 or negative means adaptive, ceil(roi_h/OutH) by ceil(roi_w/OutW)
	// per roi, as torchvision. Faster R-CNN uses 2.
	SamplingRatio int
	// SpatialScale maps roi coordinates to feature coordinates (1/stride).
	// It must be positive and finite.
	SpatialScale float32
	// Aligned shifts sampling by -0.5 pixel (torchvision's aligned=True) and
	// does not force rois to be at least one pixel in size. Faster R-CNN
	// uses false.
	Aligned bool
}

// Defaults returns Faster R-CNN's RoIAlign configuration for a feature map
// of the given spatial scale: 7x7 output, sampling ratio 2, aligned false.
func Defaults(spatialScale float32) Config {
	return Config{OutH: 7, OutW: 7, SamplingRatio: 2, SpatialScale: spatialScale}
}

// Validate reports a configuration that cannot be run.
func (c Config) Validate() error {
	if c.OutH <= 0 || c.OutW <= 0 {
		return fmt.Errorf("%w: output size %dx%d, want positive", ErrInput, c.OutH, c.OutW)
	}
	s := float64(c.SpatialScale)
	if !(s > 0) || math.IsInf(s, 0) {
		return fmt.Errorf("%w: spatial scale %v, want positive and finite", ErrInput, c.SpatialScale)
	}
	return nil
}

// Shape is an NCHW feature-map shape.
type Shape struct{ N, C, H, W int }

func (s Shape) numel() int { return s.N * s.C * s.H * s.W }

// shapeOf checks that dims is a 4-D NCHW shape with positive sizes.
func shapeOf(what string, dims []int) (Shape, error) {
	if len(dims) != 4 {
		return Shape{}, fmt.Errorf("%w: %s has shape %v, want 4-D (N, C, H, W)", ErrInput, what, dims)
	}
	s := Shape{dims[0], dims[1], dims[2], dims[3]}
	if s.N <= 0 || s.C <= 0 || s.H <= 0 || s.W <= 0 {
		return Shape{}, fmt.Errorf("%w: %s has shape %v, want positive sizes", ErrInput, what, dims)
	}
	return s, nil
}

// CheckRois validates rois, a flat (K, 5) array of rows
// [batch_index, x1, y1, x2, y2], against a batch of n images: the length
// must be a multiple of 5, batch indices integral and in [0, n), and all
// coordinates finite. It returns K. K = 0 is valid.
func CheckRois(rois []float32, n int) (int, error) {
	if len(rois)%5 != 0 {
		return 0, fmt.Errorf("%w: rois has %d values, want a multiple of 5 (rows [batch, x1, y1, x2, y2])", ErrInput, len(rois))
	}
	k := len(rois) / 5
	for i := 0; i < k; i++ {
		r := rois[i*5 : i*5+5]
		b := float64(r[0])
		if b != math.Trunc(b) || b < 0 || b >= float64(n) {
			return 0, fmt.Errorf("%w: roi %d has batch index %v, want an integer in [0, %d)", ErrInput, i, r[0], n)
		}
		for j := 1; j < 5; j++ {
			if v := float64(r[j]); math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("%w: roi %d has non-finite coordinate %v", ErrInput, i, r[j])
			}
		}
	}
	return k, nil
}

// ForwardSlice computes RoIAlign of features (shape s, NCHW) for k = len(rois)/5
// rois into out, which must hold k*C*OutH*OutW values (layout K, C, OutH, OutW)
// and is overwritten. It is the allocation-free kernel behind Forward.
func ForwardSlice(out, features []float32, s Shape, rois []float32, cfg Config) error {
	k, err := Check(features, s, rois, cfg)
	if err != nil {
		return err
	}
	if want := k * s.C * cfg.OutH * cfg.OutW; len(out) != want {
		return fmt.Errorf("%w: output has %d values, want %d (K=%d, C=%d, %dx%d)", ErrInput, len(out), want, k, s.C, cfg.OutH, cfg.OutW)
	}
	forward(out, features, s, rois, k, cfg)
	return nil
}

// BackwardSlice ADDS the gradient of RoIAlign with respect to the features
// into gradFeatures (shape s), given gradOut (K, C, OutH, OutW) for the same
// rois and configuration as the forward pass. Accumulating lets a caller
// sum the contributions of several uses of one feature map.
func BackwardSlice(gradFeatures, gradOut []float32, s Shape, rois []float32, cfg Config) error {
	k, err := Check(gradFeatures, s, rois, cfg)
	if err != nil {
		return err
	}
	if want := k * s.C * cfg.OutH * cfg.OutW; len(gradOut) != want {
		return fmt.Errorf("%w: output gradient has %d values, want %d (K=%d, C=%d, %dx%d)", ErrInput, len(gradOut), want, k, s.C, cfg.OutH, cfg.OutW)
	}
	backward(gradFeatures, gradOut, s, rois, k, cfg)
	return nil
}

// Check validates a feature buffer (or feature gradient) of shape s, the
// rois (K, 5) and the configuration, and returns K: the checks ForwardSlice
// and BackwardSlice make before their kernels, for a Backend to make
// before its own.
func Check(features []float32, s Shape, rois []float32, cfg Config) (int, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	if s.N <= 0 || s.C <= 0 || s.H <= 0 || s.W <= 0 { // shapeOf's test, without a shape slice
		return 0, fmt.Errorf("%w: features have shape %v, want positive sizes", ErrInput, []int{s.N, s.C, s.H, s.W})
	}
	if len(features) != s.numel() {
		return 0, fmt.Errorf("%w: features have %d values, want %d for shape %v", ErrInput, len(features), s.numel(), s)
	}
	return CheckRois(rois, s.N)
}

// roisOf checks that rois is a (K, 5) tensor.
func roisOf(rois *tensor.Tensor) ([]float32, error) {
	if rois == nil {
		return nil, fmt.Errorf("%w: rois is nil", ErrInput)
	}
	if sh := rois.Shape(); len(sh) != 2 || sh[1] != 5 {
		return nil, fmt.Errorf("%w: rois has shape %v, want (K, 5) rows [batch, x1, y1, x2, y2]", ErrInput, sh)
	}
	return rois.Data(), nil
}

// Forward returns RoIAlign of features (N, C, H, W) over rois (K, 5) as a new
// (K, C, OutH, OutW) tensor, as torchvision.ops.roi_align.
func Forward(features, rois *tensor.Tensor, cfg Config) (*tensor.Tensor, error) {
	if features == nil {
		return nil, fmt.Errorf("%w: features is nil", ErrInput)
	}
	s, err := shapeOf("features", features.Shape())
	if err != nil {
		return nil, err
	}
	r, err := roisOf(rois)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out := tensor.New(len(r)/5, s.C, cfg.OutH, cfg.OutW)
	if err := ForwardSlice(out.Data(), features.Data(), s, r, cfg); err != nil {
		return nil, err
	}
	return out, nil
}

// Backward returns the gradient of sum(Forward(features, rois, cfg) * gradOut)
// with respect to features, a new tensor of shape featShape (N, C, H, W).
func Backward(gradOut, rois *tensor.Tensor, featShape []int, cfg Config) (*tensor.Tensor, error) {
	s, err := shapeOf("feature shape", featShape)
	if err != nil {
		return nil, err
	}
	r, err := roisOf(rois)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if gradOut == nil {
		return nil, fmt.Errorf("%w: output gradient is nil", ErrInput)
	}
	want := []int{len(r) / 5, s.C, cfg.OutH, cfg.OutW}
	if got := gradOut.Shape(); len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		return nil, fmt.Errorf("%w: output gradient has shape %v, want %v", ErrInput, got, want)
	}
	grad := tensor.New(featShape...)
	if err := BackwardSlice(grad.Data(), gradOut.Data(), s, r, cfg); err != nil {
		return nil, err
	}
	return grad, nil
}
