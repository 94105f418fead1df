package data

import (
	"fmt"
	"math"
	"math/rand"
)

// Subset is a view of some of a dataset's samples, in a given order.
type Subset struct {
	ds  Dataset
	idx []int
}

// NewSubset returns the samples of ds at the given indices.
func NewSubset(ds Dataset, indices []int) (*Subset, error) {
	if ds == nil {
		return nil, fmt.Errorf("data: subset of a nil dataset")
	}
	n := ds.Len()
	for k, i := range indices {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("data: subset index %d (position %d) out of range [0,%d)", i, k, n)
		}
	}
	return &Subset{ds: ds, idx: append([]int(nil), indices...)}, nil
}

// Len is the number of indices.
func (s *Subset) Len() int { return len(s.idx) }

// Sample returns the parent's sample Indices()[i].
func (s *Subset) Sample(i int) (Sample, error) {
	if i < 0 || i >= len(s.idx) {
		return Sample{}, fmt.Errorf("data: subset index %d out of range [0,%d)", i, len(s.idx))
	}
	return s.ds.Sample(s.idx[i])
}

// Classes are the parent's classes.
func (s *Subset) Classes() []string { return s.ds.Classes() }

// Indices returns the parent indices, in order.
func (s *Subset) Indices() []int { return append([]int(nil), s.idx...) }

// Split shuffles ds's indices with seed and cuts them into parts of the
// given fractions (each > 0, summing to at most 1; a sum of 1 puts every
// sample in some part). Part sizes round the cumulative fractions, so they
// differ from n*fraction by less than one. The same seed gives the same
// parts; each part keeps the shuffled order.
func Split(ds Dataset, fractions []float64, seed int64) ([]*Subset, error) {
	if ds == nil {
		return nil, fmt.Errorf("data: split of a nil dataset")
	}
	if len(fractions) == 0 {
		return nil, fmt.Errorf("data: split needs at least one fraction")
	}
	sum := 0.0
	for i, f := range fractions {
		if !(f > 0) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("data: split fraction %d is %g, want > 0", i, f)
		}
		sum += f
	}
	if sum > 1+1e-9 {
		return nil, fmt.Errorf("data: split fractions %v sum to %g > 1", fractions, sum)
	}
	n := ds.Len()
	perm := rand.New(rand.NewSource(mixSeed(seed, 0x5911))).Perm(n)
	out := make([]*Subset, len(fractions))
	cum, lo := 0.0, 0
	for i, f := range fractions {
		cum += f
		hi := int(math.Round(cum * float64(n)))
		if cum > 1-1e-9 {
			hi = n
		}
		out[i] = &Subset{ds: ds, idx: perm[lo:hi:hi]}
		lo = hi
	}
	return out, nil
}
