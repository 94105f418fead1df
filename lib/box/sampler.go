package box

import (
	"fmt"
	"math/rand"
	"slices"
)

// Sampler is torchvision's BalancedPositiveNegativeSampler: per image it
// takes at most int(BatchSizePerImage*PositiveFraction) positives (labels
// >= 1) and fills the batch with negatives (labels == 0); labels < 0 are
// ignored.
type Sampler struct {
	BatchSizePerImage int
	PositiveFraction  float64
}

// Sample picks the positives and negatives of one image. When there are more
// candidates than needed, the choice is a random subset drawn from rng (as
// torch.randperm(n)[:k] draws one); rng may be nil only when no subsampling
// is needed. Both results are in increasing index order, as torchvision's
// mask-then-where yields them.
func (s Sampler) Sample(labels []int, rng *rand.Rand) (pos, neg []int, err error) {
	if s.BatchSizePerImage < 0 || s.PositiveFraction < 0 || s.PositiveFraction > 1 {
		return nil, nil, fmt.Errorf("%w: sampler batch size %d / positive fraction %v out of range", ErrInput, s.BatchSizePerImage, s.PositiveFraction)
	}
	var positive, negative []int
	for i, l := range labels {
		switch {
		case l >= 1:
			positive = append(positive, i)
		case l == 0:
			negative = append(negative, i)
		}
	}
	numPos := min(len(positive), int(float64(s.BatchSizePerImage)*s.PositiveFraction))
	numNeg := min(len(negative), s.BatchSizePerImage-numPos)
	if pos, err = pick(positive, numPos, rng); err != nil {
		return nil, nil, err
	}
	if neg, err = pick(negative, numNeg, rng); err != nil {
		return nil, nil, err
	}
	return pos, neg, nil
}

// pick returns k of the candidates, ascending.
func pick(cand []int, k int, rng *rand.Rand) ([]int, error) {
	if k >= len(cand) {
		return append([]int{}, cand...), nil
	}
	if rng == nil {
		return nil, fmt.Errorf("%w: sampler needs a random source to choose %d of %d", ErrInput, k, len(cand))
	}
	perm := rng.Perm(len(cand))[:k]
	out := make([]int, k)
	for i, p := range perm {
		out[i] = cand[p]
	}
	slices.Sort(out)
	return out, nil
}

// SortedUnion merges two ascending index lists into one ascending list, the
// sampled set torchvision forms with torch.where(pos_mask | neg_mask).
func SortedUnion(a, b []int) []int {
	out := make([]int, 0, len(a)+len(b))
	out = append(out, a...)
	out = append(out, b...)
	slices.Sort(out)
	return slices.Compact(out)
}
