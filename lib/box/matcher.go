package box

import (
	"errors"
	"fmt"

	"github.com/detlab/detlab/lib/tensor"
)

// Special match results of Matcher.Match, as torchvision's Matcher constants.
const (
	// BelowLowThreshold marks a prediction whose best IoU is below Low.
	BelowLowThreshold = -1
	// BetweenThresholds marks a prediction whose best IoU is in [Low, High).
	BetweenThresholds = -2
)

// ErrNoGroundTruth is returned by Matcher.Match for a quality matrix with no
// ground-truth rows; callers handle images without boxes before matching
// (torchvision raises in the same place).
var ErrNoGroundTruth = errors.New("box: matcher got no ground-truth boxes")

// Matcher assigns each prediction (anchor or proposal) the ground-truth box
// it overlaps most, as torchvision's det_utils.Matcher.
//
// A prediction whose best IoU is >= High gets that GT's index; below Low it
// gets BelowLowThreshold; in between, BetweenThresholds. With
// AllowLowQualityMatches, for each GT every prediction whose IoU equals that
// GT's best IoU (exact float32 ties included) gets its own best GT index
// back, whatever its IoU. Thresholds are compared as float32.
type Matcher struct {
	High, Low              float64
	AllowLowQualityMatches bool
}

// Match takes the (G, P) quality matrix (IoU of GT g with prediction p) and
// returns one entry per prediction: a GT index or one of the negative
// constants. The argmax over GTs takes the first maximum. A NaN quality is
// treated as no overlap (below every threshold, never a maximum).
func (m Matcher) Match(quality *tensor.Tensor) ([]int, error) {
	if quality == nil || quality.Dims() != 2 {
		return nil, fmt.Errorf("%w: matcher wants a (G,P) matrix", ErrInput)
	}
	if m.Low > m.High {
		return nil, fmt.Errorf("%w: matcher low threshold %v above high threshold %v", ErrInput, m.Low, m.High)
	}
	g, p := quality.Dim(0), quality.Dim(1)
	if g == 0 {
		return nil, ErrNoGroundTruth
	}
	q := quality.Data()
	matches := make([]int, p)
	vals := make([]float32, p)
	for j := 0; j < p; j++ {
		best, bi := q[j], 0
		for i := 1; i < g; i++ {
			if v := q[i*p+j]; v > best || (isNaN32(best) && !isNaN32(v)) {
				best, bi = v, i
			}
		}
		matches[j], vals[j] = bi, best
	}
	var all []int
	if m.AllowLowQualityMatches {
		all = append([]int(nil), matches...)
	}
	high, low := float32(m.High), float32(m.Low)
	for j, v := range vals {
		switch {
		case v >= low && v < high:
			matches[j] = BetweenThresholds
		case !(v >= low):
			matches[j] = BelowLowThreshold // includes NaN
		}
	}
	if m.AllowLowQualityMatches {
		for i := 0; i < g; i++ {
			row := q[i*p : (i+1)*p]
			best := float32(0)
			found := false
			for _, v := range row {
				if !isNaN32(v) && (!found || v > best) {
					best, found = v, true
				}
			}
			if !found {
				continue
			}
			for j, v := range row {
				if v == best {
					matches[j] = all[j]
				}
			}
		}
	}
	return matches, nil
}
