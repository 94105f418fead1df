package roi

import (
	"errors"
	"fmt"
	"math"

	"github.com/detlab/detlab/lib/box"
)

// ErrInput reports input the box head cannot use: mismatched lengths, bad
// labels, bad configuration.
var ErrInput = errors.New("roi: invalid input")

// Config holds the box head's sampling and post-processing numbers,
// torchvision's FasterRCNN box_* arguments. Defaults returns torchvision's
// values.
type Config struct {
	FGIoUThresh       float64    // proposals with IoU >= this are foreground (0.5)
	BGIoUThresh       float64    // proposals with IoU < this are background (0.5)
	BatchSizePerImage int        // proposals sampled per image in training (512)
	PositiveFraction  float64    // at most this fraction of them foreground (0.25)
	BBoxRegWeights    [4]float64 // BoxCoder weights (10, 10, 5, 5)
	ScoreThresh       float64    // detections need a score > this (0.05)
	NMSThresh         float64    // per-class NMS IoU threshold (0.5)
	DetectionsPerImg  int        // detections kept per image (100)
	MinSize           float64    // detections need width and height >= this (1e-2)
}

// Defaults returns torchvision 0.14's box-head configuration.
func Defaults() Config {
	return Config{
		FGIoUThresh:       0.5,
		BGIoUThresh:       0.5,
		BatchSizePerImage: 512,
		PositiveFraction:  0.25,
		BBoxRegWeights:    [4]float64{10, 10, 5, 5},
		ScoreThresh:       0.05,
		NMSThresh:         0.5,
		DetectionsPerImg:  100,
		MinSize:           1e-2,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	for _, v := range []float64{c.FGIoUThresh, c.BGIoUThresh, c.PositiveFraction, c.ScoreThresh, c.NMSThresh, c.MinSize} {
		if math.IsNaN(v) {
			return fmt.Errorf("%w: NaN in configuration", ErrInput)
		}
	}
	for _, w := range c.BBoxRegWeights {
		if !(w > 0) || math.IsInf(w, 0) {
			return fmt.Errorf("%w: box coder weights %v must be positive", ErrInput, c.BBoxRegWeights)
		}
	}
	if c.BGIoUThresh > c.FGIoUThresh {
		return fmt.Errorf("%w: background IoU threshold %v above foreground threshold %v", ErrInput, c.BGIoUThresh, c.FGIoUThresh)
	}
	if c.BatchSizePerImage <= 0 || c.PositiveFraction < 0 || c.PositiveFraction > 1 {
		return fmt.Errorf("%w: sampler batch size %d / positive fraction %v out of range", ErrInput, c.BatchSizePerImage, c.PositiveFraction)
	}
	if c.DetectionsPerImg <= 0 {
		return fmt.Errorf("%w: detections per image %d must be positive", ErrInput, c.DetectionsPerImg)
	}
	return nil
}

// Coder returns the box head's box coder (BBoxRegWeights).
func (c Config) Coder() box.Coder {
	w := c.BBoxRegWeights
	return box.NewCoder(w[0], w[1], w[2], w[3])
}

// Matcher returns the proposal matcher: FGIoUThresh/BGIoUThresh without
// low-quality matches.
func (c Config) Matcher() box.Matcher {
	return box.Matcher{High: c.FGIoUThresh, Low: c.BGIoUThresh}
}

// Sampler returns the balanced sampler of proposals.
func (c Config) Sampler() box.Sampler {
	return box.Sampler{BatchSizePerImage: c.BatchSizePerImage, PositiveFraction: c.PositiveFraction}
}
