package box_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/box"
)

func ExampleIoU() {
	a := []box.Box{{X1: 0, Y1: 0, X2: 10, Y2: 10}}
	b := []box.Box{{X1: 5, Y1: 0, X2: 15, Y2: 10}, {X1: 20, Y1: 20, X2: 30, Y2: 30}}
	iou := box.IoU(a, b) // (1, 2) matrix
	fmt.Printf("%.4f %.4f\n", iou.At(0, 0), iou.At(0, 1))
	// Output: 0.3333 0.0000
}

func ExampleNMS() {
	boxes := []box.Box{
		{X1: 0, Y1: 0, X2: 10, Y2: 10},
		{X1: 1, Y1: 1, X2: 11, Y2: 11},
		{X1: 50, Y1: 50, X2: 60, Y2: 60},
	}
	keep, err := box.NMS(boxes, []float32{0.8, 0.9, 0.7}, 0.5)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(keep) // box 0 overlaps the higher-scoring box 1 with IoU 0.68
	// Output: [1 2]
}

func ExampleBatchedNMS() {
	boxes := []box.Box{{X1: 0, Y1: 0, X2: 10, Y2: 10}, {X1: 1, Y1: 1, X2: 11, Y2: 11}}
	// Different labels never suppress each other.
	keep, _ := box.BatchedNMS(boxes, []float32{0.8, 0.9}, []int{1, 2}, 0.5)
	fmt.Println(keep)
	// Output: [1 0]
}

func ExampleCoder() {
	c := box.NewCoder(10, 10, 5, 5) // the box head's weights
	anchor := []box.Box{{X1: 0, Y1: 0, X2: 10, Y2: 10}}
	target := []box.Box{{X1: 2, Y1: 0, X2: 12, Y2: 20}}
	d, _ := c.Encode(target, anchor)
	fmt.Printf("%.3f\n", d)
	back, _ := c.Decode(d, anchor)
	fmt.Println(back[0])
	// Output:
	// [2.000 5.000 0.000 3.466]
	// [2 0 12 20]
}
