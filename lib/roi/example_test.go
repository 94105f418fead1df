package roi_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/roi"
)

func ExamplePostprocessDetections() {
	const numClasses = 3 // background + 2 object classes
	proposals := []box.Box{box.New(10, 10, 50, 50), box.New(60, 20, 90, 80)}
	logits := []float32{
		0, 4, 1, // proposal 0: most likely class 1
		1, 0, 3, // proposal 1: most likely class 2
	}
	deltas := make([]float32, 4*numClasses*len(proposals)) // keep the proposals as they are
	det, err := roi.PostprocessDetections(logits, deltas, proposals, numClasses, 100, 100, roi.Defaults())
	if err != nil {
		fmt.Println(err)
		return
	}
	// The other two (proposal, class) pairs score 0.042 and 0.047, below 0.05.
	for i := range det.Boxes {
		fmt.Printf("class %d %.3f %v\n", det.Labels[i], det.Scores[i], det.Boxes[i])
	}
	// Output:
	// class 1 0.936 [10 10 50 50]
	// class 2 0.844 [60 20 90 80]
}
