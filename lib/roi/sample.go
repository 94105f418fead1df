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
	return SelectTrainingSamplesWith(&TrainingScratch{}, proposals, gt, gtLabels, c, rng)
}

// TrainingScratch is the reusable memory of one image's
// SelectTrainingSamplesWith (the proposals with the GT appended, the IoU
// matrix, match and sampling buffers, the samples). The zero value is
// ready. A model keeps one per image of its batch, so that a training
// step's sampling allocates only the regression targets; a scratch serves
// one goroutine at a time.
type TrainingScratch struct {
	match           box.MatchScratch
	sample          box.SampleScratch
	all             []box.Box
	matched, labels []int
	idx             []int
	props, boxes    []box.Box
	sMatched, sLab  []int
	deltas          []float32
}

// noGT stands in for the GT of an image without boxes: every sample is
// matched to an all-zero box, as in torchvision. Read only.
var noGT = [1]box.Box{}

// SelectTrainingSamplesWith is SelectTrainingSamples with its memory from
// s: the result's Proposals, MatchedIdxs, Labels and RegressionTargets are
// s's, valid until its next use. The same samples,
// and the same draws from rng, as SelectTrainingSamples.
func SelectTrainingSamplesWith(s *TrainingScratch, proposals, gt []box.Box, gtLabels []int, c Config, rng *rand.Rand) (Samples, error) {
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
	all := append(s.all[:0], proposals...)
	all = append(all, gt...)
	s.all = all

	n := len(all)
	if cap(s.matched) < n {
		s.matched, s.labels = make([]int, n), make([]int, n)
	}
	matched, labels := s.matched[:n], s.labels[:n]
	if len(gt) > 0 && n > 0 {
		m, err := c.Matcher().MatchBoxes(&s.match, gt, all)
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
	} else {
		clear(matched)
		clear(labels)
	}
	pos, neg, err := c.Sampler().SampleWith(&s.sample, labels, rng)
	if err != nil {
		return Samples{}, fmt.Errorf("roi: %w", err)
	}
	idx := box.SortedUnionInto(s.idx, pos, neg)
	s.idx = idx
	k := len(idx)
	if cap(s.props) < k {
		s.props, s.boxes = make([]box.Box, k), make([]box.Box, k)
		s.sMatched, s.sLab = make([]int, k), make([]int, k)
	}
	smp := Samples{Proposals: s.props[:k], MatchedIdxs: s.sMatched[:k], Labels: s.sLab[:k]}
	gtBoxes := gt
	if len(gtBoxes) == 0 {
		gtBoxes = noGT[:]
	}
	matchedBoxes := s.boxes[:k]
	for j, i := range idx {
		smp.Proposals[j] = all[i]
		smp.MatchedIdxs[j] = matched[i]
		smp.Labels[j] = labels[i]
		matchedBoxes[j] = gtBoxes[matched[i]]
	}
	if smp.RegressionTargets, err = c.Coder().AppendEncode(s.deltas[:0], matchedBoxes, smp.Proposals); err != nil {
		return Samples{}, fmt.Errorf("roi: %w", err)
	}
	s.deltas = smp.RegressionTargets
	return smp, nil
}
