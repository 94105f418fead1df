package compute_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/compute"
)

// C (2x2) = A (2x3) * B (3x2), row-major.
func ExampleSgemm() {
	a := []float32{1, 2, 3, 4, 5, 6}
	b := []float32{7, 8, 9, 10, 11, 12}
	c := make([]float32, 4)
	compute.Sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2)
	fmt.Println(c)
	// Output: [58 64 139 154]
}

// Backend and CPU say what runs where, for benchmark printouts.
func ExampleBackend() {
	fmt.Println(compute.Backend() != "", compute.CPU().Cores > 0)
	// Output: true true
}
