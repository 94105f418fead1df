package box

import (
	"fmt"
	"slices"
)

// NMSBackend runs the O(n²) part of NMS, comparing every pair of boxes,
// somewhere other than the host's loop: lib/cuda's Backend implements it
// with a CUDA kernel. NMSWith and BatchedNMSWith still sort the scores,
// drop NaN scores, apply the batched coordinate offsets and walk the masks
// on the host, so an implementation only compares pairs.
type NMSBackend interface {
	// NMSMasks fills masks for the n = len(boxes)/4 boxes of boxes, rows
	// (x1, y1, x2, y2) in the order NMS visits them (decreasing score):
	// with words = (n+63)/64, bit k of masks[i*words+w] must be set exactly
	// when box j = 64*w+k comes after box i (j > i, j < n) and their IoU,
	// computed in float32 step by step as NMS does (see
	// NMSPairSuppressed), is >= cut. Every one of the n*words words is
	// written. len(masks) is n*words.
	NMSMasks(boxes []float32, cut float32, masks []uint64) error
}

// NMSPairSuppressed reports whether a kept box a suppresses box b in NMS
// at the IoU cut that NMSBackend.NMSMasks receives: their float32 IoU,
// computed in exactly NMS's order of operations, is >= cut (a NaN IoU
// never is). It is the reference an NMSBackend must agree with bit for
// bit:
//
//	xx1, yy1 = max(a.X1, b.X1), max(a.Y1, b.Y1)   // Go's max and min:
//	xx2, yy2 = min(a.X2, b.X2), min(a.Y2, b.Y2)   // NaN wins, max(-0, 0) = 0
//	inter = max(xx2-xx1, 0) * max(yy2-yy1, 0)
//	iou = inter / ((a.Area() + b.Area()) - inter)
func NMSPairSuppressed(a, b Box, cut float32) bool {
	xx1, yy1 := max(a.X1, b.X1), max(a.Y1, b.Y1)
	xx2, yy2 := min(a.X2, b.X2), min(a.Y2, b.Y2)
	cw, ch := max(xx2-xx1, 0), max(yy2-yy1, 0)
	inter := float32(cw * ch)
	ovr := inter / (float32(a.Area()+b.Area()) - inter)
	return ovr >= cut
}

// nmsMasked finishes nms on a backend: the n candidates packed in ws
// (visiting order) go to nb as flat rows, and the masks it returns are
// walked greedily, as torchvision's CUDA NMS does on the host: a box not
// yet removed is kept and removes every later box its mask row names.
// Kept indices are appended to keep.
func nmsMasked(nb NMSBackend, ws *nmsWork, n int, cut float32, keep []int) ([]int, error) {
	words := (n + 63) / 64
	x1, y1, x2, y2, idx := ws.cols[:n], ws.cols[n:2*n], ws.cols[2*n:3*n], ws.cols[3*n:4*n], ws.idx[:n]
	ws.flat = slices.Grow(ws.flat[:0], 4*n)[:4*n]
	for k := range n {
		ws.flat[4*k], ws.flat[4*k+1], ws.flat[4*k+2], ws.flat[4*k+3] = x1[k], y1[k], x2[k], y2[k]
	}
	ws.masks = slices.Grow(ws.masks[:0], n*words)[:n*words]
	if err := nb.NMSMasks(ws.flat, cut, ws.masks); err != nil {
		return nil, fmt.Errorf("box: nms backend: %w", err)
	}
	ws.removed = slices.Grow(ws.removed[:0], words)[:words]
	clear(ws.removed)
	removed := ws.removed
	for i := range n {
		w := i / 64
		if removed[w]&(1<<(i%64)) != 0 {
			continue
		}
		keep = append(keep, int(idx[i]))
		row := ws.masks[i*words : (i+1)*words]
		for ; w < words; w++ {
			removed[w] |= row[w]
		}
	}
	return keep, nil
}
