package rpn

import (
	"errors"
	"fmt"
	"math"

	"github.com/detlab/detlab/lib/box"
)

// ErrInput reports input the RPN cannot use: mismatched lengths, wrong
// shapes, bad configuration.
var ErrInput = errors.New("rpn: invalid input")

// Config holds the RPN's selection and training numbers, torchvision's
// FasterRCNN rpn_* arguments. Defaults returns torchvision's values.
type Config struct {
	PreNMSTopNTrain   int     // proposals kept per level before NMS in training (2000)
	PreNMSTopNTest    int     // ... in evaluation (1000)
	PostNMSTopNTrain  int     // proposals kept per image after NMS in training (2000)
	PostNMSTopNTest   int     // ... in evaluation (1000)
	NMSThresh         float64 // IoU above which NMS suppresses (0.7)
	ScoreThresh       float64 // proposals need sigmoid(objectness) >= this (0.0)
	MinSize           float64 // proposals need width and height >= this (1e-3)
	FGIoUThresh       float64 // anchors with IoU >= this are positive (0.7)
	BGIoUThresh       float64 // anchors with IoU < this are negative (0.3)
	BatchSizePerImage int     // anchors sampled per image for the losses (256)
	PositiveFraction  float64 // at most this fraction of them positive (0.5)
}

// Defaults returns torchvision 0.14's RPN configuration.
func Defaults() Config {
	return Config{
		PreNMSTopNTrain:   2000,
		PreNMSTopNTest:    1000,
		PostNMSTopNTrain:  2000,
		PostNMSTopNTest:   1000,
		NMSThresh:         0.7,
		ScoreThresh:       0.0,
		MinSize:           1e-3,
		FGIoUThresh:       0.7,
		BGIoUThresh:       0.3,
		BatchSizePerImage: 256,
		PositiveFraction:  0.5,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.PreNMSTopNTrain <= 0 || c.PreNMSTopNTest <= 0 || c.PostNMSTopNTrain <= 0 || c.PostNMSTopNTest <= 0 {
		return fmt.Errorf("%w: top-n values must be positive (%d %d %d %d)", ErrInput, c.PreNMSTopNTrain, c.PreNMSTopNTest, c.PostNMSTopNTrain, c.PostNMSTopNTest)
	}
	for _, v := range []float64{c.NMSThresh, c.ScoreThresh, c.MinSize, c.FGIoUThresh, c.BGIoUThresh, c.PositiveFraction} {
		if math.IsNaN(v) {
			return fmt.Errorf("%w: NaN in configuration", ErrInput)
		}
	}
	if c.BGIoUThresh > c.FGIoUThresh {
		return fmt.Errorf("%w: background IoU threshold %v above foreground threshold %v", ErrInput, c.BGIoUThresh, c.FGIoUThresh)
	}
	if c.BatchSizePerImage <= 0 || c.PositiveFraction < 0 || c.PositiveFraction > 1 {
		return fmt.Errorf("%w: sampler batch size %d / positive fraction %v out of range", ErrInput, c.BatchSizePerImage, c.PositiveFraction)
	}
	return nil
}

// ProposalParams are the numbers FilterProposals uses, for one mode.
type ProposalParams struct {
	PreNMSTopN  int
	PostNMSTopN int
	NMSThresh   float64
	ScoreThresh float64
	MinSize     float64
}

// Proposals returns the proposal-selection numbers for training or
// evaluation.
func (c Config) Proposals(training bool) ProposalParams {
	p := ProposalParams{PreNMSTopN: c.PreNMSTopNTest, PostNMSTopN: c.PostNMSTopNTest, NMSThresh: c.NMSThresh, ScoreThresh: c.ScoreThresh, MinSize: c.MinSize}
	if training {
		p.PreNMSTopN, p.PostNMSTopN = c.PreNMSTopNTrain, c.PostNMSTopNTrain
	}
	return p
}

// Matcher returns the anchor matcher: FGIoUThresh/BGIoUThresh with
// low-quality matches allowed.
func (c Config) Matcher() box.Matcher {
	return box.Matcher{High: c.FGIoUThresh, Low: c.BGIoUThresh, AllowLowQualityMatches: true}
}

// Sampler returns the balanced sampler of anchors for the losses.
func (c Config) Sampler() box.Sampler {
	return box.Sampler{BatchSizePerImage: c.BatchSizePerImage, PositiveFraction: c.PositiveFraction}
}

// Coder returns the RPN's box coder, weights (1,1,1,1).
func Coder() box.Coder { return box.NewCoder(1, 1, 1, 1) }
