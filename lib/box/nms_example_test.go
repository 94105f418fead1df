package box_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/box"
)

// pairMasks is a minimal box.NMSBackend: it compares every pair in Go with
// box.NMSPairSuppressed and counts the pairs it was asked about. lib/cuda's
// Backend does the same comparisons in a CUDA kernel.
type pairMasks struct{ pairs int }

func (p *pairMasks) NMSMasks(flat []float32, cut float32, masks []uint64) error {
	n := len(flat) / 4
	words := (n + 63) / 64
	at := func(i int) box.Box { return box.New(flat[4*i], flat[4*i+1], flat[4*i+2], flat[4*i+3]) }
	clear(masks)
	for i := range n {
		for j := i + 1; j < n; j++ {
			p.pairs++
			if box.NMSPairSuppressed(at(i), at(j), cut) {
				masks[i*words+j/64] |= 1 << (j % 64)
			}
		}
	}
	return nil
}

func ExampleNMSWith() {
	boxes := []box.Box{
		box.New(0, 0, 10, 10),
		box.New(1, 1, 11, 11),
		box.New(50, 50, 60, 60),
	}
	scores := []float32{0.8, 0.9, 0.7}
	nb := &pairMasks{}
	keep, err := box.NMSWith(nb, boxes, scores, 0.5) // nil instead of nb: on the host
	if err != nil {
		fmt.Println(err)
		return
	}
	host, _ := box.NMS(boxes, scores, 0.5)
	fmt.Println(keep, host, nb.pairs)
	// Output: [1 2] [1 2] 3
}
