package compute_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/compute"
)

// SgemmBF16 multiplies the operands rounded to bfloat16 (8 significant
// bits): 1.001 becomes 1, so C = 1*2 + 3*4 = 14 where Sgemm gives
// 14.002.
func ExampleSgemmBF16() {
	a := []float32{1.001, 3}
	b := []float32{2, 4}
	c := make([]float32, 1)
	compute.SgemmBF16(false, false, 1, 1, 2, 1, a, 2, b, 1, 0, c, 1)
	fmt.Println(c[0])
	compute.Sgemm(false, false, 1, 1, 2, 1, a, 2, b, 1, 0, c, 1)
	fmt.Printf("%.3f\n", c[0])
	// Output:
	// 14
	// 14.002
}

// RoundBF16Slice rounds to the nearest bfloat16, ties to even.
func ExampleRoundBF16Slice() {
	v := []float32{1 + 1.0/256, 1 + 3.0/256, 3.14159}
	compute.RoundBF16Slice(v, v)
	fmt.Println(v)
	// Output: [1 1.015625 3.140625]
}
