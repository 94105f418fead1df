// Package tensor holds detlab's dense float32 array: the value type that the
// layers, the box operations and the weight files exchange.
//
// A Tensor is row-major (C order), like a PyTorch tensor made contiguous, so
// an NCHW activation or an OIHW convolution weight has the same element order
// here as in torchvision. Conversions to and from gorgonia's *tensor.Dense live
// in this package too, so notebook users can move values between the two.
package tensor

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// ErrShape reports a shape that does not fit the data or the operation.
var ErrShape = errors.New("tensor: shape mismatch")

// Tensor is a dense, row-major float32 array.
//
// The zero value is an empty tensor with no dimensions and no data.
type Tensor struct {
	shape []int
	data  []float32
}

// New returns a zero-filled tensor of the given shape. A tensor with no
// dimensions is a scalar holding one element. New panics on a negative
// dimension, as make does for a negative length.
func New(shape ...int) *Tensor {
	n := Numel(shape)
	return &Tensor{shape: append([]int(nil), shape...), data: make([]float32, n)}
}

// FromSlice wraps data (without copying it) as a tensor of the given shape.
// It returns ErrShape when len(data) is not the product of shape.
func FromSlice(data []float32, shape ...int) (*Tensor, error) {
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("%w: negative dimension in %v", ErrShape, shape)
		}
	}
	if n := Numel(shape); n != len(data) {
		return nil, fmt.Errorf("%w: %d elements do not fill shape %v (%d)", ErrShape, len(data), shape, n)
	}
	return &Tensor{shape: append([]int(nil), shape...), data: data}, nil
}

// MustFromSlice is FromSlice for shapes known to be right; it panics otherwise.
// Use it in examples and tests, not on user input.
func MustFromSlice(data []float32, shape ...int) *Tensor {
	t, err := FromSlice(data, shape...)
	if err != nil {
		panic(err)
	}
	return t
}

// Numel returns the number of elements of a tensor of the given shape
// (1 for a scalar). It panics on a negative dimension.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor: negative dimension in %v", shape))
		}
		n *= d
	}
	return n
}

// Shape returns the dimensions of t. The slice is t's own: do not modify it.
func (t *Tensor) Shape() []int { return t.shape }

// Dims returns the number of dimensions.
func (t *Tensor) Dims() int { return len(t.shape) }

// Dim returns the size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Len returns the number of elements.
func (t *Tensor) Len() int { return len(t.data) }

// Data returns the elements in row-major order. The slice is t's storage:
// writing to it changes t.
func (t *Tensor) Data() []float32 { return t.data }

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{shape: append([]int(nil), t.shape...), data: append([]float32(nil), t.data...)}
}

// Reshape returns a tensor sharing t's data with a new shape. One dimension
// may be -1 and is then inferred.
func (t *Tensor) Reshape(shape ...int) (*Tensor, error) {
	shape = append([]int(nil), shape...)
	infer := -1
	known := 1
	for i, d := range shape {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			return nil, fmt.Errorf("%w: cannot reshape %v to %v", ErrShape, t.shape, shape)
		default:
			known *= d
		}
	}
	if infer >= 0 {
		if known == 0 || len(t.data)%known != 0 {
			return nil, fmt.Errorf("%w: cannot reshape %v to %v", ErrShape, t.shape, shape)
		}
		shape[infer] = len(t.data) / known
		known *= shape[infer]
	}
	if known != len(t.data) {
		return nil, fmt.Errorf("%w: cannot reshape %v (%d elements) to %v", ErrShape, t.shape, len(t.data), shape)
	}
	return &Tensor{shape: shape, data: t.data}, nil
}

// offset returns the flat index of idx, checking bounds.
func (t *Tensor) offset(idx []int) int {
	if len(idx) != len(t.shape) {
		panic(fmt.Sprintf("tensor: %d indices for shape %v", len(idx), t.shape))
	}
	off := 0
	for i, x := range idx {
		if x < 0 || x >= t.shape[i] {
			panic(fmt.Sprintf("tensor: index %v out of range for shape %v", idx, t.shape))
		}
		off = off*t.shape[i] + x
	}
	return off
}

// At returns the element at the given indices; it panics when they are out of
// range, like a slice index.
func (t *Tensor) At(idx ...int) float32 { return t.data[t.offset(idx)] }

// Set stores v at the given indices; it panics when they are out of range.
func (t *Tensor) Set(v float32, idx ...int) { t.data[t.offset(idx)] = v }

// SameShape reports whether a and b have identical shapes.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// HasNaN reports whether t holds a NaN or an infinity.
func (t *Tensor) HasNaN() bool {
	for _, v := range t.data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return true
		}
	}
	return false
}

// String prints the shape and, for small tensors, the values.
func (t *Tensor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tensor%v", t.shape)
	if len(t.data) <= 16 {
		fmt.Fprintf(&b, " %v", t.data)
	} else {
		fmt.Fprintf(&b, " [%v %v %v ... %v]", t.data[0], t.data[1], t.data[2], t.data[len(t.data)-1])
	}
	return b.String()
}
