package anchor_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/anchor"
)

func ExampleGenerator_Generate() {
	g, err := anchor.New(anchor.Defaults())
	if err != nil {
		fmt.Println(err)
		return
	}
	// A 320x480 padded batch and its 10x15 stride-32 feature map.
	anchors, err := g.Generate(320, 480, [][2]int{{10, 15}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(anchors), "anchors,", g.NumAnchorsPerLocation()[0], "per location")
	fmt.Println("first:", anchors[0])
	fmt.Println("location (0,1), anchor 0:", anchors[15])
	// Output:
	// 2250 anchors, 15 per location
	// first: [-23 -11 23 11]
	// location (0,1), anchor 0: [9 -11 55 11]
}
