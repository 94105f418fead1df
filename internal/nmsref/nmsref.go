// Package nmsref is box.NMSBackend's contract written plainly in Go: the
// reference lib/cuda's tests compare the CUDA NMS kernel's masks with.
package nmsref

import "github.com/detlab/detlab/lib/box"

// Masks returns the suppression masks of the n = len(flat)/4 boxes in flat
// (x1, y1, x2, y2 each, sorted by score): bit k of word w of row i is set
// when box j = 64w+k comes after box i and box.NMSPairSuppressed(box i,
// box j, cut). Rows are ceil(n/64) words long.
func Masks(flat []float32, cut float32) []uint64 {
	n := len(flat) / 4
	words := (n + 63) / 64
	at := func(i int) box.Box { return box.Box{X1: flat[4*i], Y1: flat[4*i+1], X2: flat[4*i+2], Y2: flat[4*i+3]} }
	m := make([]uint64, n*words)
	for i := range n {
		for j := i + 1; j < n; j++ {
			if box.NMSPairSuppressed(at(i), at(j), cut) {
				m[i*words+j/64] |= 1 << (j % 64)
			}
		}
	}
	return m
}
