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
	var sc SampleScratch
	pos, neg, err = s.SampleWith(&sc, labels, rng)
	if err != nil {
		return nil, nil, err
	}
	// The results own their memory (a scratch's are reused).
	return slices.Clip(pos), slices.Clip(neg), nil
}

// SampleScratch is the reusable working memory of Sampler.SampleWith (the
// candidate lists, the permutation and the results). The zero value is
// ready; one scratch serves one goroutine (a model keeps its own).
type SampleScratch struct {
	cand     []int // positives then negatives
	perm     []int
	pos, neg []int
}

// SampleWith is Sample with its memory from sc: once sc has grown to the
// problem's size it allocates nothing. pos and neg are sc's and valid
// until its next use. The draws from rng are Sample's (the same
// permutations, consumed in the same order).
func (s Sampler) SampleWith(sc *SampleScratch, labels []int, rng *rand.Rand) (pos, neg []int, err error) {
	if s.BatchSizePerImage < 0 || s.PositiveFraction < 0 || s.PositiveFraction > 1 {
		return nil, nil, fmt.Errorf("%w: sampler batch size %d / positive fraction %v out of range", ErrInput, s.BatchSizePerImage, s.PositiveFraction)
	}
	nPos, nNeg := 0, 0
	for _, l := range labels {
		switch {
		case l >= 1:
			nPos++
		case l == 0:
			nNeg++
		}
	}
	cand := growInts(&sc.cand, nPos+nNeg)
	positive, negative := cand[:0:nPos], cand[nPos:nPos]
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
	if pos, err = pick(&sc.pos, &sc.perm, positive, numPos, rng); err != nil {
		return nil, nil, err
	}
	if neg, err = pick(&sc.neg, &sc.perm, negative, numNeg, rng); err != nil {
		return nil, nil, err
	}
	return pos, neg, nil
}

// growInts returns (*buf)[:n], growing *buf when its capacity is short.
func growInts(buf *[]int, n int) []int {
	if cap(*buf) < n {
		*buf = make([]int, n)
	}
	return (*buf)[:n]
}

// pick returns k of the candidates, ascending, in *out's memory; *perm
// holds the permutation.
func pick(out, perm *[]int, cand []int, k int, rng *rand.Rand) ([]int, error) {
	if k >= len(cand) {
		o := growInts(out, len(cand))
		copy(o, cand)
		return o, nil
	}
	if rng == nil {
		return nil, fmt.Errorf("%w: sampler needs a random source to choose %d of %d", ErrInput, k, len(cand))
	}
	p := permInto(growInts(perm, len(cand)), rng)[:k]
	o := growInts(out, k)
	for i, j := range p {
		o[i] = cand[j]
	}
	slices.Sort(o)
	return o, nil
}

// permInto writes rng.Perm(len(m)) into m: the same loop as math/rand's
// Perm (which Go 1 keeps stable for seeded sources), so the same draws,
// without allocating.
func permInto(m []int, rng *rand.Rand) []int {
	for i := range m {
		j := rng.Intn(i + 1)
		m[i] = m[j]
		m[j] = i
	}
	return m
}

// SortedUnion merges two ascending index lists into one ascending list, the
// sampled set torchvision forms with torch.where(pos_mask | neg_mask).
func SortedUnion(a, b []int) []int {
	return SortedUnionInto(make([]int, 0, len(a)+len(b)), a, b)
}

// SortedUnionInto is SortedUnion appending to dst[:0] (no allocation when
// its capacity holds len(a)+len(b)). dst must not overlap a or b.
func SortedUnionInto(dst, a, b []int) []int {
	out := append(dst[:0], a...)
	out = append(out, b...)
	slices.Sort(out)
	return slices.Compact(out)
}
