package tensor

import (
	"fmt"

	_ "go4.org/unsafe/assume-no-moving-gc" // gorgonia needs it on Go >= 1.21
	gtensor "gorgonia.org/tensor"
)

// ToDense returns a gorgonia *tensor.Dense sharing t's data, so values can be
// handed to gorgonia code (for example in a notebook cell).
func (t *Tensor) ToDense() *gtensor.Dense {
	shape := append([]int(nil), t.shape...)
	if len(shape) == 0 {
		return gtensor.New(gtensor.FromScalar(t.data[0]))
	}
	return gtensor.New(gtensor.WithShape(shape...), gtensor.WithBacking(t.data))
}

// FromDense copies a float32 or float64 gorgonia *tensor.Dense into a Tensor.
func FromDense(d *gtensor.Dense) (*Tensor, error) {
	shape := append([]int(nil), d.Shape()...)
	if d.IsScalar() {
		shape = nil
	}
	out := New(shape...)
	switch d.Dtype() {
	case gtensor.Float32:
		copy(out.data, d.Float32s())
	case gtensor.Float64:
		for i, v := range d.Float64s() {
			out.data[i] = float32(v)
		}
	default:
		return nil, fmt.Errorf("tensor: FromDense: unsupported dtype %v", d.Dtype())
	}
	if !d.IsNativelyAccessible() || (!d.DataOrder().IsRowMajor()) {
		return nil, fmt.Errorf("tensor: FromDense: only row-major CPU tensors are supported")
	}
	return out, nil
}
