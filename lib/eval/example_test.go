package eval_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/eval"
)

// Evaluate a model's detections on two images, as a notebook cell would.
func Example() {
	ev := eval.NewCOCO([]eval.Category{{ID: 1, Name: "cat"}, {ID: 2, Name: "dog"}})
	ev.Add(eval.GroundTruth{ImageID: 1,
		Boxes:  []box.Box{box.New(10, 10, 30, 30), box.New(50, 50, 70, 70), box.New(10, 60, 40, 90)},
		Labels: []int{1, 1, 2},
	}, eval.Detections{ImageID: 1,
		Boxes:  []box.Box{box.New(10, 10, 30, 30), box.New(52, 52, 72, 72), box.New(10, 60, 40, 90)},
		Labels: []int{1, 1, 2},
		Scores: []float32{0.9, 0.8, 0.95},
	})
	ev.Add(eval.GroundTruth{ImageID: 2,
		Boxes:  []box.Box{box.New(0, 0, 40, 40), box.New(60, 0, 90, 30)},
		Labels: []int{1, 2},
	}, eval.Detections{ImageID: 2,
		Boxes:  []box.Box{box.New(0, 0, 40, 20), box.New(60, 0, 90, 15), box.New(70, 70, 80, 80)},
		Labels: []int{1, 2, 2},
		Scores: []float32{0.7, 0.5, 0.6},
	})
	res, err := ev.Evaluate()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(res)
	fmt.Print(res.ClassTable())
	// Output:
	//  Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.519
	//  Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.917
	//  Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 0.421
	//  Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 0.620
	//  Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.100
	//  Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000
	//  Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.433
	//  Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ] = 0.525
	//  Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.525
	//  Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 0.625
	//  Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.100
	//  Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000
	//   id  name                  AP    AP50    AP75   VOC50     gt   dets
	//    1  cat               0.5010  1.0000  0.3366  1.0000      3      3
	//    2  dog               0.5380  0.8350  0.5050  0.8333      2      3
}
