package box

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/detlab/detlab/internal/nmscases"
)

// nmsReference is the straightforward kernel nms replaced, kept to check it. When offset is non-nil, box i is shifted by offset[i] in
// all four coordinates before the IoU (the coordinate trick).
func nmsReference(boxes []Box, scores []float32, thresh float64, offset []float32) []int {
	order := sortedByScoreReference(scores)
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

// sortedByScoreReference is the comparison sort sortedByScore replaced; it returns the indices of the non-NaN scores in decreasing score
// order, equal scores in increasing index order (torch's stable sort).
func sortedByScoreReference(scores []float32) []int {
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

// nmsThreshes are the reference thresholds, negative to NaN.
var nmsThreshes = nmscases.Thresholds

// nmsRefCase draws reference case trial (of nmscases.Count, from one rng
// seeded 7) as Boxes: up to 59 boxes full of edge cases (ties, signed
// zeros, NaN and infinite scores and coordinates, empty boxes) and per-box
// coordinate offsets. lib/cuda/internal/hostcheck's NMS test draws the
// same cases.
func nmsRefCase(rng *rand.Rand, trial int) (boxes []Box, scores, offset []float32) {
	coords, scores, offset := nmscases.Case(rng, trial)
	boxes = make([]Box, len(coords))
	for i, c := range coords {
		boxes[i] = Box{X1: c[0], Y1: c[1], X2: c[2], Y2: c[3]}
	}
	return boxes, scores, offset
}

// TestNMSMatchesReference checks the packed kernel against the plain one
// on the reference cases at every threshold, with and without offsets.
func TestNMSMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for trial := range 300 {
		boxes, scores, offset := nmsRefCase(rng, trial)
		for _, th := range nmsThreshes {
			for _, off := range [][]float32{nil, offset} {
				got, err := nms(new(nmsWork), nil, nil, boxes, scores, th, off, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := nmsReference(boxes, scores, th, off)
				if !slices.Equal(got, want) {
					t.Fatalf("trial %d thresh %v offset %v: got %v, want %v\nboxes %v\nscores %v", trial, th, off != nil, got, want, boxes, scores)
				}
			}
		}
		if got, want := sortedByScore(scores), sortedByScoreReference(scores); !slices.Equal(got, want) {
			t.Fatalf("trial %d: order %v, want %v (scores %v)", trial, got, want, scores)
		}
	}
}
