package roi

import (
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/box"
)

// Samples are one image's training proposals for the box head, in the order
// the heads see them (ascending index into proposals + GT boxes).
type Samples struct {
	// Proposals are the sampled boxes.
	Proposals []box.Box
	// MatchedIdxs is each sample's matched GT index, clamped to 0 for
	// background (and 0 for every sample of an image without GT).
	MatchedIdxs []int
	// Labels are GT class labels for foreground, 0 for background and -1
	// for ignored samples (possible only when BGIoUThresh < FGIoUThresh).
	Labels []int
	// RegressionTargets holds 4 deltas per sample: BoxCoder(BBoxRegWeights)
	// encoding of the matched GT box relative to the proposal. Only the
	// foreground samples' targets enter the loss; for an image without GT
	// the matched box is all zeros (dw, dh are -Inf), as in torchvision.
	RegressionTargets []float32
}

// SelectTrainingSamples prepares one image's box-head training samples, as
// RoIHeads.select_training_samples: the GT boxes are appended to the
// proposals, every box is matched to the GT (IoU >= FGIoUThresh foreground,
// < BGIoUThresh background, no low-quality matches), labelled with its GT's
// class or 0, and BatchSizePerImage of them are sampled with at most
// PositiveFraction foreground (randomly from rng when there are more
// candidates; rng may be nil when everything fits). An image without GT
// boxes is valid: all proposals are background.
func SelectTrainingSamples(proposals, gt []box.Box, gtLabels []int, c Config, rng *rand.Rand) (Samples, error) {
	if err := c.Validate(); err != nil {
		return Samples{}, err
	}
	if len(gt) != len(gtLabels) {
		return Samples{}, fmt.Errorf("%w: %d GT boxes and %d labels", ErrInput, len(gt), len(gtLabels))
	}
	for i, g := range gt {
		if g.HasNaN() {
			return Samples{}, fmt.Errorf("%w: ground-truth box %d is %v", ErrInput, i, g)
		}
		if gtLabels[i] < 0 {
			return Samples{}, fmt.Errorf("%w: ground-truth label %d of box %d is negative", ErrInput, gtLabels[i], i)
		}
	}
	all := make([]box.Box, 0, len(proposals)+len(gt))
	all = append(all, proposals...)
	all = append(all, gt...)

	n := len(all)
	matched := make([]int, n)
	labels := make([]int, n)
	if len(gt) > 0 && n > 0 {
		m, err := c.Matcher().Match(box.IoU(gt, all))
		if err != nil {
			return Samples{}, fmt.Errorf("roi: %w", err)
		}
		for i, v := range m {
			matched[i] = max(v, 0)
			switch v {
			case box.BelowLowThreshold:
				labels[i] = 0
			case box.BetweenThresholds:
				labels[i] = -1
			default:
				labels[i] = gtLabels[v]
			}
		}
	}
	pos, neg, err := c.Sampler().Sample(labels, rng)
	if err != nil {
		return Samples{}, fmt.Errorf("roi: %w", err)
	}
	idx := box.SortedUnion(pos, neg)
	s := Samples{
		Proposals:   box.Select(all, idx),
		MatchedIdxs: make([]int, len(idx)),
		Labels:      make([]int, len(idx)),
	}
	gtBoxes := gt
	if len(gtBoxes) == 0 {
		gtBoxes = []box.Box{{}}
	}
	matchedBoxes := make([]box.Box, len(idx))
	for k, i := range idx {
		s.MatchedIdxs[k] = matched[i]
		s.Labels[k] = labels[i]
		matchedBoxes[k] = gtBoxes[matched[i]]
	}
	if s.RegressionTargets, err = c.Coder().Encode(matchedBoxes, s.Proposals); err != nil {
		return Samples{}, fmt.Errorf("roi: %w", err)
	}
	return s, nil
}
