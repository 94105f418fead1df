package rpn

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/detlab/detlab/lib/box"
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
	idx, level := make([]int, 0, picked), make([]int, 0, picked)
	start := 0
	for l, k := range anchorsPerLevel {
		top := topKLogits(objectness[start:start+k], min(p.PreNMSTopN, k))
		for _, i := range top {
			idx = append(idx, start+i)
			level = append(level, l)
		}
		start += k
	}
	// 2-3. Decode, score, clip.
	coder := Coder()
	boxes := make([]box.Box, len(idx))
	scores := make([]float32, len(idx))
	for k, i := range idx {
		boxes[k] = coder.DecodeOne([4]float32(deltas[4*i:4*i+4]), anchors[i])
		scores[k] = proposalSigmoid(objectness[i])
	}
	boxes = box.ClipToImage(boxes, height, width)
	// 4. Remove small boxes.
	keep := box.RemoveSmall(boxes, p.MinSize)
	// 5. Score threshold (float32 comparison, as torch with a Python float).
	thresh := float32(p.ScoreThresh)
	kept := keep[:0]
	for _, i := range keep {
		if scores[i] >= thresh {
			kept = append(kept, i)
		}
	}
	boxes, scores, level = box.Select(boxes, kept), proposalGatherF32(scores, kept), proposalGatherInt(level, kept)
	// 6. NMS per level.
	nmsKeep, err := box.BatchedNMSWith(nb, boxes, scores, level, p.NMSThresh)
	if err != nil {
		return nil, nil, fmt.Errorf("rpn: %w", err)
	}
	// 7. Post-NMS top-n.
	if len(nmsKeep) > p.PostNMSTopN {
		nmsKeep = nmsKeep[:p.PostNMSTopN]
	}
	return box.Select(boxes, nmsKeep), proposalGatherF32(scores, nmsKeep), nil
}

// topKLogits returns the indices of the k largest values in decreasing order,
// equal values in increasing index order (-0 equals +0); NaN ranks last.
//
// It sorts one uint64 per value, the value's order-preserving bits
// inverted in the high half (NaN mapped past every number) and the index
// in the low half: the order of a stable comparison sort, much cheaper.
func topKLogits(v []float32, k int) []int {
	kp := keyPool.Get().(*[]uint64)
	keys := slices.Grow((*kp)[:0], len(v)) // once, not append by append, after a GC emptied the pool
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
	out := make([]int, k)
	for j := range out {
		out[j] = int(uint32(keys[j]))
	}
	*kp = keys
	keyPool.Put(kp)
	return out
}

// keyPool recycles topKLogits' sort keys between calls.
var keyPool = sync.Pool{New: func() any { return new([]uint64) }}

// proposalSigmoid is torch.sigmoid in float32 (computed in float64 and rounded).
func proposalSigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

func proposalGatherF32(v []float32, idx []int) []float32 {
	out := make([]float32, len(idx))
	for k, i := range idx {
		out[k] = v[i]
	}
	return out
}

func proposalGatherInt(v []int, idx []int) []int {
	out := make([]int, len(idx))
	for k, i := range idx {
		out[k] = v[i]
	}
	return out
}
