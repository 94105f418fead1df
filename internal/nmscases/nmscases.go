// Package nmscases draws the reference cases of non-maximum suppression:
// lib/box checks its CPU NMS on them against a plain implementation, and
// lib/cuda's hostcheck runs the same cases through the compiled CUDA
// kernel. Both draw from math/rand seeded 7, so the cases are identical.
package nmscases

import (
	"math"
	"math/rand"
)

// Thresholds are the IoU thresholds the cases run at, negative to NaN.
var Thresholds = []float64{-0.5, -1e-50, 0, 1e-50, 0.1, 1.0 / 3, 0.5, 0.7, 1, 2, math.Inf(1), math.Inf(-1), math.NaN()}

// Count is the number of reference cases (trials 0 to Count-1).
const Count = 300

// Case draws reference case trial from rng: up to 59 boxes as
// (x1, y1, x2, y2), full of edge cases (ties, signed zeros, NaN and
// infinite scores and coordinates, empty boxes), their scores, and
// per-box coordinate offsets (0, 1 or 2 times the span plus one: three
// groups that never overlap, for the batched coordinate trick).
func Case(rng *rand.Rand, trial int) (boxes [][4]float32, scores, offset []float32) {
	inf := float32(math.Inf(1))
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.NaN()), inf, -inf, 1, 1, 0.5}
	n := rng.Intn(60)
	span := []float32{5, 50, 500}[trial%3]
	boxes = make([][4]float32, n)
	scores = make([]float32, n)
	offset = make([]float32, n)
	for i := range boxes {
		x, y := rng.Float32()*span, rng.Float32()*span
		boxes[i] = [4]float32{x, y, x + rng.Float32()*span/2, y + rng.Float32()*span/2}
		if rng.Intn(4) == 0 {
			boxes[i][2] = boxes[i][0] // empty
		}
		if rng.Intn(15) == 0 {
			c := specials[rng.Intn(len(specials))]
			boxes[i][rng.Intn(4)] = c
		}
		scores[i] = float32(rng.Intn(8)) / 8 // many ties
		if rng.Intn(10) == 0 {
			scores[i] = specials[rng.Intn(len(specials))]
		}
		offset[i] = float32(rng.Intn(3)) * (span + 1)
	}
	return boxes, scores, offset
}
