package rpn

import (
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/box"
)

// AnchorTargets are one image's training targets for the RPN.
type AnchorTargets struct {
	// Labels per anchor: 1 foreground, 0 background, -1 ignored.
	Labels []int
	// MatchedGT is the index of the GT box each anchor was matched to,
	// clamped to 0 for background and ignored anchors (and 0 for every
	// anchor of an image without GT boxes).
	MatchedGT []int
	// RegressionTargets holds 4 deltas per anchor: BoxCoder (1,1,1,1)
	// encoding of the matched GT box relative to the anchor. Only the
	// positives' targets are meaningful (and enter the loss); for an image
	// without GT boxes the matched box is all zeros and the dw, dh targets
	// are -Inf, as in torchvision.
	RegressionTargets []float32
}

// AssignTargets labels the anchors of one image against its ground-truth
// boxes, as RegionProposalNetwork.assign_targets_to_anchors followed by
// box_coder.encode: IoU >= FGIoUThresh (or a low-quality best match of some
// GT) is foreground, IoU < BGIoUThresh background, the rest ignored. Anchors
// crossing the image border are kept. An image without GT boxes is valid:
// every anchor is background.
func AssignTargets(anchors, gt []box.Box, c Config) (AnchorTargets, error) {
	return AssignTargetsWith(&TargetScratch{}, anchors, gt, c)
}

// TargetScratch is the reusable memory of one image's AssignTargetsWith
// and SampleAnchorsWith (IoU matrix, match and sampling buffers, labels).
// The zero value is ready. A model keeps one per image of its batch, so
// that a training step's target assignment allocates only the regression
// targets; a scratch serves one goroutine at a time.
type TargetScratch struct {
	match           box.MatchScratch
	sample          box.SampleScratch
	labels, matched []int
	boxes           []box.Box
	deltas          []float32
}

// AssignTargetsWith is AssignTargets with its memory from s: the Labels,
// MatchedGT and RegressionTargets of the result are s's, valid until s's
// next use. Same results as AssignTargets.
func AssignTargetsWith(s *TargetScratch, anchors, gt []box.Box, c Config) (AnchorTargets, error) {
	if err := c.Validate(); err != nil {
		return AnchorTargets{}, err
	}
	for i, g := range gt {
		if g.HasNaN() {
			return AnchorTargets{}, fmt.Errorf("%w: ground-truth box %d is %v", ErrInput, i, g)
		}
	}
	n := len(anchors)
	if cap(s.labels) < n {
		s.labels, s.matched, s.boxes = make([]int, n), make([]int, n), make([]box.Box, n)
	}
	t := AnchorTargets{Labels: s.labels[:n], MatchedGT: s.matched[:n]}
	matchedBoxes := s.boxes[:n]
	if len(gt) > 0 && n > 0 {
		matches, err := c.Matcher().MatchBoxes(&s.match, gt, anchors)
		if err != nil {
			return AnchorTargets{}, fmt.Errorf("rpn: %w", err)
		}
		for i, m := range matches {
			switch m {
			case box.BelowLowThreshold:
				t.Labels[i] = 0
			case box.BetweenThresholds:
				t.Labels[i] = -1
			default:
				t.Labels[i] = 1
			}
			t.MatchedGT[i] = max(m, 0)
			matchedBoxes[i] = gt[t.MatchedGT[i]]
		}
	} else {
		clear(t.Labels)
		clear(t.MatchedGT)
		clear(matchedBoxes)
	}
	enc, err := Coder().AppendEncode(s.deltas[:0], matchedBoxes, anchors)
	if err != nil {
		return AnchorTargets{}, fmt.Errorf("rpn: %w", err)
	}
	s.deltas = enc
	t.RegressionTargets = enc
	return t, nil
}

// SampleAnchors chooses one image's anchors for the losses with the
// balanced sampler (BatchSizePerImage anchors, at most PositiveFraction of
// them positive), drawing from rng when there are more candidates than
// places. pos and neg are ascending anchor indices; box.SortedUnion(pos, neg)
// gives the sampled set in torchvision's order.
func SampleAnchors(labels []int, c Config, rng *rand.Rand) (pos, neg []int, err error) {
	pos, neg, err = c.Sampler().Sample(labels, rng)
	if err != nil {
		return nil, nil, fmt.Errorf("rpn: %w", err)
	}
	return pos, neg, nil
}

// SampleAnchorsWith is SampleAnchors with its memory from s (labels may be
// s's own, from AssignTargetsWith): pos and neg are s's, valid until its
// next use. The same draws from rng as SampleAnchors.
func SampleAnchorsWith(s *TargetScratch, labels []int, c Config, rng *rand.Rand) (pos, neg []int, err error) {
	pos, neg, err = c.Sampler().SampleWith(&s.sample, labels, rng)
	if err != nil {
		return nil, nil, fmt.Errorf("rpn: %w", err)
	}
	return pos, neg, nil
}

// SampleBatch samples the anchors of every image of a batch (labels[i] is
// image i's, all of the same length, the anchors per image) in image order
// from one rng, and returns indices into the batch's flattened
// (image, anchor) order, ascending: the sampled_pos_inds and
// sampled_neg_inds of torchvision's compute_loss.
func SampleBatch(labels [][]int, c Config, rng *rand.Rand) (pos, neg []int, err error) {
	for img, l := range labels {
		if len(l) != len(labels[0]) {
			return nil, nil, fmt.Errorf("%w: image %d has %d anchor labels, image 0 has %d", ErrInput, img, len(l), len(labels[0]))
		}
	}
	for img, l := range labels {
		p, n, err := SampleAnchors(l, c, rng)
		if err != nil {
			return nil, nil, fmt.Errorf("image %d: %w", img, err)
		}
		off := img * len(labels[0])
		for _, i := range p {
			pos = append(pos, off+i)
		}
		for _, i := range n {
			neg = append(neg, off+i)
		}
	}
	return pos, neg, nil
}
