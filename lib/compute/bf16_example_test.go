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

// SgemmBF16Epilogue rounds the operands (1.001 becomes 1) but applies the
// epilogue in float32: row 0 is 0.5*(1*2+3*4) + 0.001 = 7.001, row 1 is
// clamped by the ReLU.
func ExampleSgemmBF16Epilogue() {
	a := []float32{1.001, 3, -1, -1}
	b := []float32{2, 4}
	c := make([]float32, 2)
	ep := compute.Epilogue{Scale: []float32{0.5, 1}, Shift: []float32{0.001, 0}, ReLU: true}
	compute.SgemmBF16Epilogue(false, false, 2, 1, 2, a, 2, b, 1, c, 1, ep)
	fmt.Printf("%.3f %g\n", c[0], c[1])
	// Output: 7.001 0
}

// A BF16Matrix converts a left operand (a convolution's weights) once for
// several products.
func ExampleBF16Matrix() {
	w := compute.NewBF16Matrix(1, 2, []float32{1.001, 3}, 2)
	defer w.Release()
	c := make([]float32, 2)
	for _, b := range [][]float32{{2, 0, 4, 0}, {1, 1, 1, 1}} {
		w.Gemm(2, b, 2, c, 2, compute.Epilogue{})
		fmt.Println(c)
	}
	// Output:
	// [14 0]
	// [4 4]
}
