package box

import (
	"math"
	"math/rand"
	"slices"
	"testing"
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

// nmsThreshes are the thresholds the reference cases run at, from
// negative to NaN.
var nmsThreshes = []float64{-0.5, -1e-50, 0, 1e-50, 0.1, 1.0 / 3, 0.5, 0.7, 1, 2, math.Inf(1), math.Inf(-1), math.NaN()}

// nmsRefCase draws reference case trial (of 300, from one rng seeded 7):
// up to 59 boxes full of edge cases (ties, signed zeros, NaN and infinite
// scores and coordinates, empty boxes) and per-box coordinate offsets.
// lib/cuda/internal/hostcheck's NMS test draws the same cases.
func nmsRefCase(rng *rand.Rand, trial int) (boxes []Box, scores, offset []float32) {
	inf := float32(math.Inf(1))
	specials := []float32{0, float32(math.Copysign(0, -1)), nan32, inf, -inf, 1, 1, 0.5}
	n := rng.Intn(60)
	span := []float32{5, 50, 500}[trial%3]
	boxes = make([]Box, n)
	scores = make([]float32, n)
	offset = make([]float32, n)
	for i := range boxes {
		x, y := rng.Float32()*span, rng.Float32()*span
		boxes[i] = Box{x, y, x + rng.Float32()*span/2, y + rng.Float32()*span/2}
		if rng.Intn(4) == 0 {
			boxes[i].X2 = boxes[i].X1 // empty
		}
		if rng.Intn(15) == 0 {
			c := specials[rng.Intn(len(specials))]
			switch rng.Intn(4) {
			case 0:
				boxes[i].X1 = c
			case 1:
				boxes[i].Y1 = c
			case 2:
				boxes[i].X2 = c
			default:
				boxes[i].Y2 = c
			}
		}
		scores[i] = float32(rng.Intn(8)) / 8 // many ties
		if rng.Intn(10) == 0 {
			scores[i] = specials[rng.Intn(len(specials))]
		}
		offset[i] = float32(rng.Intn(3)) * (span + 1)
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
				got, err := nms(nil, boxes, scores, th, off, nil)
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
