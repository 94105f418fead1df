package box

import (
	"errors"
	"fmt"
	"slices"

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
	var sc MatchScratch
	matches, err := m.match(&sc, quality.Data(), quality.Dim(0), quality.Dim(1))
	return slices.Clip(matches), err
}

// MatchScratch is the reusable working memory of Matcher.MatchWith and
// MatchBoxes (the IoU matrix, the best values, the results). The zero
// value is ready; one scratch serves one goroutine (a model keeps its own).
type MatchScratch struct {
	quality []float32
	areas   []float32
	matches []int
	all     []int
	vals    []float32
}

// MatchWith is Match with its memory from sc: once sc has grown to the
// problem's size it allocates nothing. The result is sc's and valid until
// its next use.
func (m Matcher) MatchWith(sc *MatchScratch, quality *tensor.Tensor) ([]int, error) {
	if quality == nil || quality.Dims() != 2 {
		return nil, fmt.Errorf("%w: matcher wants a (G,P) matrix", ErrInput)
	}
	return m.match(sc, quality.Data(), quality.Dim(0), quality.Dim(1))
}

// MatchBoxes is MatchWith on the IoU of the ground-truth boxes gt with the
// predictions preds, computed into sc as IoU(gt, preds) computes it (the
// same float32 steps, so the same matches) without allocating the matrix.
func (m Matcher) MatchBoxes(sc *MatchScratch, gt, preds []Box) ([]int, error) {
	g, p := len(gt), len(preds)
	if cap(sc.quality) < g*p {
		sc.quality = make([]float32, g*p)
	}
	if cap(sc.areas) < p {
		sc.areas = make([]float32, p)
	}
	q, areas := sc.quality[:g*p], sc.areas[:p]
	for j, b := range preds {
		areas[j] = b.Area()
	}
	for i, a := range gt {
		aa := a.Area()
		row := q[i*p : (i+1)*p]
		for j, b := range preds {
			row[j] = iou(a, aa, b, areas[j])
		}
	}
	return m.match(sc, q, g, p)
}

// match is Match on the row-major g x p quality matrix q, in sc's memory.
func (m Matcher) match(sc *MatchScratch, q []float32, g, p int) ([]int, error) {
	if m.Low > m.High {
		return nil, fmt.Errorf("%w: matcher low threshold %v above high threshold %v", ErrInput, m.Low, m.High)
	}
	if g == 0 {
		return nil, ErrNoGroundTruth
	}
	if cap(sc.matches) < p {
		sc.matches, sc.vals = make([]int, p), make([]float32, p)
	}
	matches, vals := sc.matches[:p], sc.vals[:p]
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
		if cap(sc.all) < p {
			sc.all = make([]int, p)
		}
		all = sc.all[:p]
		copy(all, matches)
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
