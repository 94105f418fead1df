package summary_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/summary"
)

func ExampleOf() {
	model, err := fasterrcnn.New(fasterrcnn.Defaults(4))
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := summary.Of(model, 2, 480, 640) // a notebook cell ending in s shows the HTML table
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.TotalParams, s.Input)
	// Output: 40336031 [2 3 800 1088]
}
