package rpn

import (
	"fmt"
	"math"
	"slices"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/internal/freelist"
)

// FilterProposals selects one image's proposals from the RPN outputs, as
// torchvision's RegionProposalNetwork.filter_proposals:
//
//  1. per feature level, the PreNMSTopN anchors with the highest raw logits
//     (anchorsPerLevel splits the anchors; levels are concatenated);
//  2. their deltas decoded on the anchors with BoxCoder (1,1,1,1), and
//     sigmoid(logit) as the score;
//  3. boxes clipped to the unpadded (height, width) of the resized image;
//  4. boxes narrower or lower than MinSize removed;
//  5. scores below ScoreThresh removed;
//  6. NMS at NMSThresh, separately per level (batched NMS by level);
//  7. the first PostNMSTopN, in decreasing score order.
//
// objectness holds one logit per anchor and deltas 4 per anchor, in anchor
// order (see FlattenPredictions). A NaN logit ranks below every number and
// its anchor is never proposed; a NaN delta gives a NaN box, which the
// small-box step removes.
func FilterProposals(objectness, deltas []float32, anchors []box.Box, anchorsPerLevel []int, height, width int, p ProposalParams) ([]box.Box, []float32, error) {
	return FilterProposalsWith(nil, objectness, deltas, anchors, anchorsPerLevel, height, width, p)
}

// FilterProposalsWith is FilterProposals with step 6's pairwise IoU tests
// on nb (box.BatchedNMSWith; a GPU backend such as lib/cuda's), or on the
// host when nb is nil. The proposals are the same either way.
func FilterProposalsWith(nb box.NMSBackend, objectness, deltas []float32, anchors []box.Box, anchorsPerLevel []int, height, width int, p ProposalParams) ([]box.Box, []float32, error) {
	var s ProposalScratch
	return s.Filter(nb, objectness, deltas, anchors, anchorsPerLevel, height, width, p)
}

// ProposalScratch is the working memory of FilterProposals, kept between
// calls: a model that keeps one per image of its batch filters a training
// step's proposals without allocating. The zero value is ready; a scratch
// serves one goroutine at a time.
type ProposalScratch struct {
	keys             []uint64
	idx, level, kept []int
	boxes            []box.Box
	scores           []float32
	nmsKeep          []int
	outBoxes         []box.Box
	outScores        []float32
	selLevel         []int
	selBoxes         []box.Box
	selScores        []float32
}

// Filter is FilterProposalsWith with its memory from s: the returned
// proposals and scores are s's, valid until s's next use. Same results as
// FilterProposalsWith.
func (s *ProposalScratch) Filter(nb box.NMSBackend, objectness, deltas []float32, anchors []box.Box, anchorsPerLevel []int, height, width int, p ProposalParams) ([]box.Box, []float32, error) {
	n := len(anchors)
	if len(objectness) != n || len(deltas) != 4*n {
		return nil, nil, fmt.Errorf("%w: %d anchors, %d logits, %d deltas (want 1 and 4 per anchor)", ErrInput, n, len(objectness), len(deltas))
	}
	sum := 0
	for _, k := range anchorsPerLevel {
		if k < 0 {
			return nil, nil, fmt.Errorf("%w: negative anchor count %d", ErrInput, k)
		}
		sum += k
	}
	if sum != n {
		return nil, nil, fmt.Errorf("%w: anchors per level %v sum to %d, have %d anchors", ErrInput, anchorsPerLevel, sum, n)
	}
	if height <= 0 || width <= 0 {
		return nil, nil, fmt.Errorf("%w: image size %dx%d", ErrInput, height, width)
	}
	if p.PreNMSTopN <= 0 || p.PostNMSTopN <= 0 {
		return nil, nil, fmt.Errorf("%w: top-n %d/%d must be positive", ErrInput, p.PreNMSTopN, p.PostNMSTopN)
	}

	// 1. Top-n per level on the raw logits.
	picked := 0
	for _, k := range anchorsPerLevel {
		picked += min(p.PreNMSTopN, k)
	}
	idx, level := slices.Grow(s.idx[:0], picked), slices.Grow(s.level[:0], picked)
	start := 0
	for l, k := range anchorsPerLevel {
		before := len(idx)
		s.keys, idx = appendTopKLogits(s.keys, idx, objectness[start:start+k], min(p.PreNMSTopN, k))
		for j := before; j < len(idx); j++ {
			idx[j] += start
			level = append(level, l)
		}
		start += k
	}
	s.idx, s.level = idx, level
	// 2-3. Decode, score, clip.
	coder := Coder()
	boxes := slices.Grow(s.boxes[:0], len(idx))[:len(idx)]
	scores := slices.Grow(s.scores[:0], len(idx))[:len(idx)]
	s.boxes, s.scores = boxes, scores
	for k, i := range idx {
		boxes[k] = coder.DecodeOne([4]float32(deltas[4*i:4*i+4]), anchors[i]).Clip(height, width)
		scores[k] = proposalSigmoid(objectness[i])
	}
	// 4. Remove small boxes.
	keep := box.AppendRemoveSmall(slices.Grow(s.kept[:0], len(boxes)), boxes, p.MinSize)
	// 5. Score threshold (float32 comparison, as torch with a Python float).
	thresh := float32(p.ScoreThresh)
	kept := keep[:0]
	for _, i := range keep {
		if scores[i] >= thresh {
			kept = append(kept, i)
		}
	}
	s.kept = kept
	s.selBoxes, s.selScores, s.selLevel = gather(s.selBoxes, boxes, kept), gather(s.selScores, scores, kept), gather(s.selLevel, level, kept)
	// 6. NMS per level.
	nmsKeep, err := box.AppendBatchedNMSWith(s.nmsKeep[:0], nb, s.selBoxes, s.selScores, s.selLevel, p.NMSThresh)
	if err != nil {
		return nil, nil, fmt.Errorf("rpn: %w", err)
	}
	s.nmsKeep = nmsKeep
	// 7. Post-NMS top-n.
	if len(nmsKeep) > p.PostNMSTopN {
		nmsKeep = nmsKeep[:p.PostNMSTopN]
	}
	s.outBoxes, s.outScores = gather(s.outBoxes, s.selBoxes, nmsKeep), gather(s.outScores, s.selScores, nmsKeep)
	return s.outBoxes, s.outScores, nil
}

// gather returns v[idx[0]], v[idx[1]], ... in dst's memory (grown when
// short).
func gather[T any](dst, v []T, idx []int) []T {
	dst = slices.Grow(dst[:0], len(idx))[:len(idx)]
	for k, i := range idx {
		dst[k] = v[i]
	}
	return dst
}

// topKLogits returns the indices of the k largest values in decreasing order,
// equal values in increasing index order (-0 equals +0); NaN ranks last.
func topKLogits(v []float32, k int) []int {
	kp := keyPool.Get()
	var out []int
	*kp, out = appendTopKLogits(*kp, make([]int, 0, k), v, k)
	keyPool.Put(kp)
	return out
}

// appendTopKLogits appends topKLogits(v, k) to dst, sorting in keys'
// memory (returned, grown).
//
// It sorts one uint64 per value, the value's order-preserving bits
// inverted in the high half (NaN mapped past every number) and the index
// in the low half: the order of a stable comparison sort, much cheaper.
func appendTopKLogits(keys []uint64, dst []int, v []float32, k int) ([]uint64, []int) {
	keys = slices.Grow(keys[:0], len(v)) // once, not append by append
	for i, x := range v {
		hi := uint32(math.MaxUint32) // NaN: after every number
		if x == x {
			if x == 0 {
				x = 0 // -0 ranks with +0
			}
			u := math.Float32bits(x)
			if u&(1<<31) != 0 {
				u = ^u
			} else {
				u |= 1 << 31
			}
			hi = ^u // u increases with x, ^u decreases; below MaxUint32
		}
		keys = append(keys, uint64(hi)<<32|uint64(uint32(i)))
	}
	slices.Sort(keys)
	for _, key := range keys[:k] {
		dst = append(dst, int(uint32(key)))
	}
	return keys, dst
}

// keyPool recycles topKLogits' sort keys between calls.
var keyPool freelist.List[[]uint64]

// proposalSigmoid is torch.sigmoid in float32 (computed in float64 and rounded).
func proposalSigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }
