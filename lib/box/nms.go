package box

import (
	"fmt"
	"slices"
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
	if len(boxes) != len(scores) {
		return nil, fmt.Errorf("%w: nms got %d boxes and %d scores", ErrInput, len(boxes), len(scores))
	}
	return nms(boxes, scores, thresh, nil), nil
}

// nms is the kernel. When offset is non-nil, box i is shifted by offset[i] in
// all four coordinates before the IoU (the coordinate trick).
func nms(boxes []Box, scores []float32, thresh float64, offset []float32) []int {
	order := sortedByScore(scores)
	n := len(order)
	// Gather the candidates in visiting order (struct of arrays) so the
	// inner loop is linear in memory.
	x1, y1 := make([]float32, n), make([]float32, n)
	x2, y2 := make([]float32, n), make([]float32, n)
	area := make([]float32, n)
	for k, i := range order {
		b := boxes[i]
		if offset != nil {
			o := offset[i]
			b = Box{b.X1 + o, b.Y1 + o, b.X2 + o, b.Y2 + o}
		}
		x1[k], y1[k], x2[k], y2[k] = b.X1, b.Y1, b.X2, b.Y2
		area[k] = b.Area()
	}
	// Without overlap the IoU is 0 (or NaN for two empty boxes), never above
	// a non-negative threshold, so such pairs can be skipped.
	skipDisjoint := thresh >= 0
	suppressed := make([]bool, n)
	keep := make([]int, 0, n)
	for k := 0; k < n; k++ {
		if suppressed[k] {
			continue
		}
		keep = append(keep, order[k])
		ix1, iy1, ix2, iy2, ia := x1[k], y1[k], x2[k], y2[k], area[k]
		for j := k + 1; j < n; j++ {
			if suppressed[j] {
				continue
			}
			// torchvision's nms_kernel.cpp, step by step in float32.
			w := min32(ix2, x2[j]) - max32(ix1, x1[j])
			h := min32(iy2, y2[j]) - max32(iy1, y1[j])
			if skipDisjoint && (w <= 0 || h <= 0) {
				continue
			}
			if w < 0 {
				w = 0
			}
			if h < 0 {
				h = 0
			}
			inter := float32(w * h)
			ovr := inter / (float32(ia+area[j]) - inter)
			if float64(ovr) > thresh {
				suppressed[j] = true
			}
		}
	}
	return keep
}

// sortedByScore returns the indices of the non-NaN scores in decreasing score
// order, equal scores in increasing index order (torch's stable sort).
func sortedByScore(scores []float32) []int {
	order := make([]int, 0, len(scores))
	for i, s := range scores {
		if !isNaN32(s) {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch sa, sb := scores[a], scores[b]; {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return order
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
	if len(boxes) != len(scores) || len(boxes) != len(labels) {
		return nil, fmt.Errorf("%w: batched nms got %d boxes, %d scores, %d labels", ErrInput, len(boxes), len(scores), len(labels))
	}
	for i, l := range labels {
		if l < 0 {
			return nil, fmt.Errorf("%w: batched nms label %d at index %d is negative", ErrInput, l, i)
		}
	}
	if len(boxes) == 0 {
		return []int{}, nil
	}
	if 4*len(boxes) > coordinateTrickMaxNumel {
		return batchedNMSVanilla(boxes, scores, labels, thresh), nil
	}
	return batchedNMSCoordinateTrick(boxes, scores, labels, thresh), nil
}

// batchedNMSCoordinateTrick is torchvision's _batched_nms_coordinate_trick:
// offsets = labels.to(boxes) * (boxes.max() + 1), in float32.
func batchedNMSCoordinateTrick(boxes []Box, scores []float32, labels []int, thresh float64) []int {
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
	offset := make([]float32, len(boxes))
	for i, l := range labels {
		offset[i] = float32(l) * step
	}
	return nms(boxes, scores, thresh, offset)
}

// batchedNMSVanilla is torchvision's _batched_nms_vanilla: NMS per label, then
// the kept indices (ascending) sorted by decreasing score.
func batchedNMSVanilla(boxes []Box, scores []float32, labels []int, thresh float64) []int {
	byLabel := map[int][]int{}
	for i, l := range labels {
		byLabel[l] = append(byLabel[l], i)
	}
	keepMask := make([]bool, len(boxes))
	for _, idx := range byLabel {
		sub := Select(boxes, idx)
		subScores := make([]float32, len(idx))
		for k, i := range idx {
			subScores[k] = scores[i]
		}
		for _, k := range nms(sub, subScores, thresh, nil) {
			keepMask[idx[k]] = true
		}
	}
	kept := make([]float32, len(boxes))
	var keepIdx []int
	for i, k := range keepMask {
		if k {
			keepIdx = append(keepIdx, i)
		}
	}
	for k, i := range keepIdx {
		kept[k] = scores[i]
	}
	order := sortedByScore(kept[:len(keepIdx)])
	out := make([]int, len(order))
	for k, o := range order {
		out[k] = keepIdx[o]
	}
	return out
}
