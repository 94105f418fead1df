package box

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/detlab/detlab/lib/internal/freelist"
)

// coordinateTrickMaxNumel is torchvision's CPU switch in batched_nms: with at
// most this many box coordinates (4 per box) it offsets boxes per class and
// runs one NMS; above it, it runs NMS class by class.
const coordinateTrickMaxNumel = 4000

// NMS performs non-maximum suppression as torchvision.ops.nms on the CPU and
// returns the indices of the kept boxes in decreasing score order.
//
// Candidates are visited in decreasing score order (a stable sort, so equal
// scores keep their input order); a candidate is suppressed when its IoU with
// an already kept box is strictly greater than thresh. The IoU is a float32
// and is compared with the float64 threshold, as in torchvision.
//
// NaN scores: torchvision sorts NaN first; here a box whose score is NaN is
// dropped (never kept, never suppresses). A box with a NaN coordinate has a
// NaN IoU with every box, so it neither suppresses nor is suppressed.
func NMS(boxes []Box, scores []float32, thresh float64) ([]int, error) {
	return NMSWith(nil, boxes, scores, thresh)
}

// NMSWith is NMS with the pairwise IoU comparisons on nb (a GPU backend,
// see NMSBackend); a nil nb runs them on the host. Sorting, NaN handling
// and the greedy walk stay on the host, and the kept indices are the same
// as NMS's on every input.
func NMSWith(nb NMSBackend, boxes []Box, scores []float32, thresh float64) ([]int, error) {
	if len(boxes) != len(scores) {
		return nil, fmt.Errorf("%w: nms got %d boxes and %d scores", ErrInput, len(boxes), len(scores))
	}
	ws := nmsPool.Get()
	defer nmsPool.Put(ws)
	return nms(ws, nb, nil, boxes, scores, thresh, nil, nil)
}

// nms is the kernel: it appends the kept indices to keep (a new slice when
// keep is nil) and works in ws. With a non-nil nb, the pairwise comparisons run on
// that backend (nmsMasked), whose errors are the only ones returned. When
// offset is non-nil, box i is shifted by offset[i] in all four coordinates
// before the IoU (the coordinate trick). When subset is non-nil
// (ascending indices), only those boxes are candidates: the result is then
// NMS of the selected boxes, as indices into boxes.
//
// It decides exactly as torchvision's nms_kernel.cpp (same float32
// arithmetic per pair) but faster: the candidates not yet suppressed are
// kept packed (struct of arrays, in visiting order), and each kept box
// filters the rest in one branch-light pass that drops the suppressed ones,
// so later passes never revisit them.
func nms(ws *nmsWork, nb NMSBackend, keep []int, boxes []Box, scores []float32, thresh float64, offset []float32, subset []int) ([]int, error) {
	// Sized up front: a workspace the pool has just made would otherwise
	// grow append by append.
	candidates := len(scores)
	if subset != nil {
		candidates = len(subset)
	}
	ws.keys = scoreKeys(slices.Grow(ws.keys[:0], candidates), scores, subset)
	n := len(ws.keys)
	if keep == nil {
		keep = make([]int, 0, n)
	}
	if n == 0 {
		return keep, nil
	}
	order := slices.Grow(ws.order[:0], n)
	for _, key := range ws.keys {
		order = append(order, int(uint32(key)))
	}
	ws.order = order
	ws.cols = slices.Grow(ws.cols[:0], 5*n)[:5*n]
	ws.idx = slices.Grow(ws.idx[:0], n)[:n]
	buf, idx := ws.cols, ws.idx
	x1, y1, x2, y2, area := buf[:n], buf[n:2*n], buf[2*n:3*n], buf[3*n:4*n], buf[4*n:]
	for k, i := range order {
		b := boxes[i]
		if offset != nil {
			o := offset[i]
			b = Box{b.X1 + o, b.Y1 + o, b.X2 + o, b.Y2 + o}
		}
		x1[k], y1[k], x2[k], y2[k] = b.X1, b.Y1, b.X2, b.Y2
		area[k] = b.Area()
		idx[k] = int32(i)
	}
	cut, never := suppressionCut(thresh)
	if never {
		for _, i := range order {
			keep = append(keep, i)
		}
		return keep, nil
	}
	if nb != nil && n > 1 {
		return nmsMasked(nb, ws, n, cut, keep)
	}
	for n > 0 {
		// The head of the packed list survived every kept box: keep it.
		keep = append(keep, int(idx[0]))
		ix1, iy1, ix2, iy2, ia := x1[0], y1[0], x2[0], y2[0], area[0]
		w := 0
		for j := 1; j < n; j++ {
			// torchvision's nms_kernel.cpp, step by step in float32 (the
			// clamps to 0 only matter when the boxes are disjoint, where
			// the IoU is then 0, or NaN for two empty boxes).
			// The builtin min and max differ from max32/min32 only for
			// NaN and signed zeros, where the IoU comes out NaN or the
			// same either way; they compile without branches.
			xx1, yy1 := max(ix1, x1[j]), max(iy1, y1[j])
			xx2, yy2 := min(ix2, x2[j]), min(iy2, y2[j])
			cw, ch := max(xx2-xx1, 0), max(yy2-yy1, 0)
			inter := float32(cw * ch)
			ovr := inter / (float32(ia+area[j]) - inter)
			// Always copy, advance only when j survives (no branch on
			// the data-dependent outcome).
			x1[w], y1[w], x2[w], y2[w], area[w], idx[w] = x1[j], y1[j], x2[j], y2[j], area[j], idx[j]
			if !(ovr >= cut) {
				w++
			}
		}
		n = w
	}
	return keep, nil
}

// nmsWork is nms's scratch, recycled between calls (NMS runs per image and
// per class in every training step).
type nmsWork struct {
	keys  []uint64
	order []int
	cols  []float32
	idx   []int32
	// nmsMasked's: the boxes in visiting order, the masks, the removed set.
	flat    []float32
	masks   []uint64
	removed []uint64
	// The batched paths': the coordinate offsets; the indices grouped by
	// label, their sort keys and the kept set.
	offset    []float32
	byLabel   []int
	labelKeys []uint64
	keepMask  []bool
	labelKept []int
}

// nmsPool is a freelist, not a sync.Pool: a collection would empty a
// sync.Pool, and the next call regrow its workspace append by append.
var nmsPool freelist.List[nmsWork]

// suppressionCut returns the smallest float32 c such that, for every
// non-NaN float32 IoU v, float64(v) > thresh exactly when v >= c (torchvision
// compares the float32 IoU with the double threshold). never reports a
// threshold no IoU exceeds (NaN or +Inf).
func suppressionCut(thresh float64) (c float32, never bool) {
	if math.IsNaN(thresh) || math.IsInf(thresh, 1) {
		return 0, true
	}
	c = float32(thresh)
	if float64(c) <= thresh {
		c = math.Nextafter32(c, float32(math.Inf(1)))
	}
	return c, false
}

// sortedByScore returns the indices of the non-NaN scores in decreasing score
// order, equal scores in increasing index order (torch's stable sort; -0
// and +0 are equal).
//
// It sorts one uint64 per score, the score's order-preserving bit pattern
// inverted in the high half and the index in the low half, which orders as
// the stable comparison sort does at a fraction of its cost.
func sortedByScore(scores []float32) []int {
	keys := scoreKeys(nil, scores, nil)
	order := make([]int, len(keys))
	for k, key := range keys {
		order[k] = int(uint32(key))
	}
	return order
}

// scoreKeys appends the sorted keys of the non-NaN scores to keys: the
// score's order-preserving bits inverted in the high half, the index in
// the low half. With a non-nil subset (ascending) only those indices
// count.
func scoreKeys(keys []uint64, scores []float32, subset []int) []uint64 {
	n := len(scores)
	if subset != nil {
		n = len(subset)
	}
	for k := range n {
		i := k
		if subset != nil {
			i = subset[k]
		}
		s := scores[i]
		if isNaN32(s) {
			continue
		}
		if s == 0 {
			s = 0 // -0 sorts as +0
		}
		u := math.Float32bits(s)
		if u&(1<<31) != 0 {
			u = ^u // negative: larger magnitude sorts lower
		} else {
			u |= 1 << 31
		}
		// u increases with the score; ^u makes the high half decrease.
		keys = append(keys, uint64(^u)<<32|uint64(uint32(i)))
	}
	slices.Sort(keys)
	return keys
}

// BatchedNMS performs NMS independently per label, as
// torchvision.ops.batched_nms on the CPU, and returns the kept indices sorted
// by decreasing score across all labels.
//
// Like torchvision it takes one of two paths, which can round differently in
// float32: with at most 1000 boxes (4000 coordinates) it offsets every box by
// label * (max coordinate + 1) and runs a single NMS; with more it runs NMS
// per label and merges. NaN scores are dropped as in NMS. Labels must be
// non-negative.
func BatchedNMS(boxes []Box, scores []float32, labels []int, thresh float64) ([]int, error) {
	return BatchedNMSWith(nil, boxes, scores, labels, thresh)
}

// BatchedNMSWith is BatchedNMS with the pairwise IoU comparisons on nb (see
// NMSWith; nil runs them on the host). It takes the same two paths as
// BatchedNMS and keeps the same indices on every input.
func BatchedNMSWith(nb NMSBackend, boxes []Box, scores []float32, labels []int, thresh float64) ([]int, error) {
	return AppendBatchedNMSWith(nil, nb, boxes, scores, labels, thresh)
}

// AppendBatchedNMSWith is BatchedNMSWith appending the kept indices to dst
// (which must not share memory with the other arguments): a caller that
// reuses dst, as a training loop's proposal filter does, makes NMS
// allocate nothing once its working memory has grown. A nil dst gives a
// new slice.
func AppendBatchedNMSWith(dst []int, nb NMSBackend, boxes []Box, scores []float32, labels []int, thresh float64) ([]int, error) {
	if len(boxes) != len(scores) || len(boxes) != len(labels) {
		return nil, fmt.Errorf("%w: batched nms got %d boxes, %d scores, %d labels", ErrInput, len(boxes), len(scores), len(labels))
	}
	for i, l := range labels {
		if l < 0 {
			return nil, fmt.Errorf("%w: batched nms label %d at index %d is negative", ErrInput, l, i)
		}
	}
	if len(boxes) == 0 {
		if dst == nil {
			return []int{}, nil
		}
		return dst, nil
	}
	ws := nmsPool.Get()
	defer nmsPool.Put(ws)
	if 4*len(boxes) > coordinateTrickMaxNumel {
		return batchedNMSVanilla(ws, nb, dst, boxes, scores, labels, thresh)
	}
	return batchedNMSCoordinateTrick(ws, nb, dst, boxes, scores, labels, thresh)
}

// batchedNMSCoordinateTrick is torchvision's _batched_nms_coordinate_trick:
// offsets = labels.to(boxes) * (boxes.max() + 1), in float32.
func batchedNMSCoordinateTrick(ws *nmsWork, nb NMSBackend, keep []int, boxes []Box, scores []float32, labels []int, thresh float64) ([]int, error) {
	maxCoord := boxes[0].X1
	for _, b := range boxes {
		for _, v := range [4]float32{b.X1, b.Y1, b.X2, b.Y2} {
			if v > maxCoord || isNaN32(v) {
				maxCoord = v
			}
			if isNaN32(maxCoord) {
				break
			}
		}
	}
	step := maxCoord + 1
	ws.offset = slices.Grow(ws.offset[:0], len(boxes))[:len(boxes)]
	offset := ws.offset
	for i, l := range labels {
		offset[i] = float32(l) * step
	}
	return nms(ws, nb, keep, boxes, scores, thresh, offset, nil)
}

// batchedNMSVanilla is torchvision's _batched_nms_vanilla: NMS per label, then
// the kept indices (ascending) sorted by decreasing score.
//
// The labels' index sets are NMS'd in place (no copies of their boxes):
// ties break by index within a label as they would on a copy, since each
// set is ascending.
func batchedNMSVanilla(ws *nmsWork, nb NMSBackend, keep []int, boxes []Box, scores []float32, labels []int, thresh float64) ([]int, error) {
	byLabel := groupByLabel(ws, labels)
	ws.keepMask = slices.Grow(ws.keepMask[:0], len(boxes))[:len(boxes)]
	keepMask := ws.keepMask
	clear(keepMask)
	kept := ws.labelKept
	for lo := 0; lo < len(byLabel); {
		hi := lo + 1
		for hi < len(byLabel) && labels[byLabel[hi]] == labels[byLabel[lo]] {
			hi++
		}
		var err error
		kept, err = nms(ws, nb, kept[:0], boxes, scores, thresh, nil, byLabel[lo:hi])
		if err != nil {
			return nil, err
		}
		for _, i := range kept {
			keepMask[i] = true
		}
		lo = hi
	}
	ws.labelKept = kept
	keepIdx := byLabel[:0]
	for i, k := range keepMask {
		if k {
			keepIdx = append(keepIdx, i)
		}
	}
	ws.keys = scoreKeys(ws.keys[:0], scores, keepIdx)
	if keep == nil {
		keep = make([]int, 0, len(ws.keys))
	}
	for _, key := range ws.keys {
		keep = append(keep, int(uint32(key)))
	}
	return keep, nil
}

// groupByLabel returns the indices 0..len(labels)-1 stably sorted by
// label (ascending within each label), in ws's memory: through one sorted
// uint64 key per index (label high, index low) when the labels fit, else
// by a stable comparison sort.
func groupByLabel(ws *nmsWork, labels []int) []int {
	n := len(labels)
	ws.byLabel = slices.Grow(ws.byLabel[:0], n)[:n]
	byLabel := ws.byLabel
	small := uint64(n) <= math.MaxUint32
	for _, l := range labels {
		if uint64(l) > math.MaxUint32 {
			small = false
			break
		}
	}
	if !small {
		for i := range byLabel {
			byLabel[i] = i
		}
		slices.SortStableFunc(byLabel, func(a, b int) int { return cmp.Compare(labels[a], labels[b]) })
		return byLabel
	}
	keys := slices.Grow(ws.labelKeys[:0], n)
	for i, l := range labels {
		keys = append(keys, uint64(l)<<32|uint64(i))
	}
	slices.Sort(keys)
	for k, key := range keys {
		byLabel[k] = int(uint32(key))
	}
	ws.labelKeys = keys
	return byLabel
}
