package rpn_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/rpn"
)

func ExampleFilterProposals() {
	anchors := []box.Box{
		box.New(0, 0, 32, 32), box.New(2, 2, 34, 34), box.New(64, 64, 96, 96),
	}
	logits := []float32{1.5, 2.0, -0.5} // one objectness logit per anchor
	deltas := make([]float32, 4*len(anchors))
	deltas[2*4+0] = 0.25 // move anchor 2 right by a quarter of its width
	p := rpn.Defaults().Proposals(false)
	boxes, scores, err := rpn.FilterProposals(logits, deltas, anchors, []int{len(anchors)}, 100, 100, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Anchor 0 overlaps anchor 1 with IoU 0.78 > 0.7 and is suppressed;
	// anchor 2's box is shifted to x2 = 104 and clipped to the image.
	for i := range boxes {
		fmt.Printf("%v %.3f\n", boxes[i], scores[i])
	}
	// Output:
	// [2 2 34 34] 0.881
	// [72 64 100 96] 0.378
}

func ExampleAssignTargets() {
	anchors := []box.Box{box.New(0, 0, 10, 10), box.New(0, 0, 10, 6), box.New(40, 40, 50, 50)}
	gt := []box.Box{box.New(0, 0, 10, 9)}
	t, err := rpn.AssignTargets(anchors, gt, rpn.Defaults())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Labels) // IoU 0.9 positive, 0.67 ignored, 0 negative
	// Output: [1 -1 0]
}
