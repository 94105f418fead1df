package tensor

import (
	"errors"
	"fmt"
	"testing"

	gtensor "gorgonia.org/tensor"
)

func TestReshape(t *testing.T) {
	x := New(2, 3, 4)
	tests := []struct {
		shape []int
		want  []int
		ok    bool
	}{
		{[]int{6, 4}, []int{6, 4}, true},
		{[]int{-1, 4}, []int{6, 4}, true},
		{[]int{2, -1}, []int{2, 12}, true},
		{[]int{24}, []int{24}, true},
		{[]int{5, -1}, nil, false},
		{[]int{-1, -1}, nil, false},
		{[]int{7, 4}, nil, false},
		{[]int{0, -1}, nil, false},
	}
	for _, tc := range tests {
		got, err := x.Reshape(tc.shape...)
		if (err == nil) != tc.ok {
			t.Errorf("Reshape(%v): err = %v, want ok=%v", tc.shape, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrShape) {
				t.Errorf("Reshape(%v): error %v is not ErrShape", tc.shape, err)
			}
			continue
		}
		if !SameShape(got.Shape(), tc.want) {
			t.Errorf("Reshape(%v) = %v, want %v", tc.shape, got.Shape(), tc.want)
		}
		if &got.Data()[0] != &x.Data()[0] {
			t.Errorf("Reshape(%v) copied the data", tc.shape)
		}
	}
}

func TestFromSliceAndIndex(t *testing.T) {
	if _, err := FromSlice(make([]float32, 5), 2, 3); !errors.Is(err, ErrShape) {
		t.Errorf("FromSlice with 5 values for (2,3): err = %v, want ErrShape", err)
	}
	if _, err := FromSlice(nil, -1); !errors.Is(err, ErrShape) {
		t.Errorf("FromSlice with a negative dimension: err = %v, want ErrShape", err)
	}
	x := MustFromSlice([]float32{0, 1, 2, 3, 4, 5}, 2, 3)
	if got := x.At(1, 2); got != 5 {
		t.Errorf("At(1,2) = %v, want 5", got)
	}
	x.Set(9, 0, 1)
	if got := x.Data()[1]; got != 9 {
		t.Errorf("after Set(9, 0, 1): data[1] = %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("At out of range did not panic")
		}
	}()
	x.At(2, 0)
}

func TestDenseRoundTrip(t *testing.T) {
	x := MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	d := x.ToDense()
	if fmt.Sprint(d.Shape()) != "(2, 3)" {
		t.Fatalf("ToDense shape = %v", d.Shape())
	}
	y, err := FromDense(d)
	if err != nil {
		t.Fatal(err)
	}
	if !SameShape(y.Shape(), x.Shape()) || y.At(1, 2) != 6 {
		t.Errorf("round trip gave %v", y)
	}
	d64 := gtensor.New(gtensor.WithShape(2), gtensor.WithBacking([]float64{1.5, -2}))
	z, err := FromDense(d64)
	if err != nil || z.At(1) != -2 {
		t.Errorf("FromDense(float64) = %v, %v", z, err)
	}
	if _, err := FromDense(gtensor.New(gtensor.WithShape(2), gtensor.WithBacking([]int{1, 2}))); err == nil {
		t.Errorf("FromDense(int) succeeded")
	}
}

func ExampleTensor_Reshape() {
	x := MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	y, err := x.Reshape(3, -1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(y.Shape(), y.At(2, 1))
	// Output: [3 2] 6
}
