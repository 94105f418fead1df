package transform_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/transform"
)

// TestResizeBilinearTorch compares ResizeBilinear with torch 1.13's
// F.interpolate on small images covering up- and downscaling, an unchanged
// axis, a single row and the identity (testdata/gen_interp.py). The
// arithmetic reproduces torch's, so the bound is tight.
func TestResizeBilinearTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/interp.json")
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Cases []struct {
			In, Out       []int
			Input, Output []float64
		}
	}
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	for _, c := range data.Cases {
		name := fmt.Sprintf("%v->%v", c.In, c.Out)
		in := make([]float32, len(c.Input))
		for i, v := range c.Input {
			in[i] = float32(v)
		}
		got, err := transform.ResizeBilinear(tensor.MustFromSlice(in, c.In...), c.Out[0], c.Out[1])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := []int{c.In[0], c.Out[0], c.Out[1]}; fmt.Sprint(got.Shape()) != fmt.Sprint(want) {
			t.Fatalf("%s: shape %v, want %v", name, got.Shape(), want)
		}
		var worst float64
		for i, v := range got.Data() {
			worst = math.Max(worst, math.Abs(float64(v)-c.Output[i]))
		}
		if worst > 1e-6 {
			t.Errorf("%s: max abs diff %g from torch", name, worst)
		}
		t.Logf("%s: max abs diff %g", name, worst)
	}
}

func TestScaleAndSize(t *testing.T) {
	cases := []struct {
		h, w, min, max int
		scale          float32
		size           transform.Size
	}{
		// README item 5: a reciprocal-multiply, not a correctly rounded division.
		{200, 500, 320, 480, 0.96000004, transform.Size{H: 192, W: 480}},
		{150, 226, 320, 480, 2.1238937, transform.Size{H: 318, W: 479}},
		{600, 700, 320, 480, 0.53333336, transform.Size{H: 320, W: 373}},
		{320, 480, 320, 480, float32(float32(1)/320) * 320, transform.Size{H: 320, W: 480}},
		{1, 1000, 800, 1333, float32(float32(1)/1000) * 1333, transform.Size{H: 1, W: 1333}},
	}
	for _, c := range cases {
		s := transform.Scale(c.h, c.w, c.min, c.max)
		if s != c.scale {
			t.Errorf("Scale(%d,%d,%d,%d) = %.9g, want %.9g", c.h, c.w, c.min, c.max, s, c.scale)
		}
		if got := transform.ResizedSize(c.h, c.w, s); got != c.size {
			t.Errorf("ResizedSize(%d,%d,%v) = %v, want %v", c.h, c.w, s, got, c.size)
		}
	}
	if s := transform.Scale(200, 500, 320, 480); s == float32(480.0/500.0) {
		t.Errorf("scale %v equals the correctly rounded quotient; torch's differs", s)
	}
}

func TestResizeBoxes(t *testing.T) {
	// Boxes outside the image stay outside: clipping is the model's job.
	boxes := tensor.MustFromSlice([]float32{-10, -5, 300, 260, 0, 0, 0, 0}, 2, 4)
	got, err := transform.ResizeBoxes(boxes, transform.Size{H: 100, W: 200}, transform.Size{H: 50, W: 300})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{-15, -2.5, 450, 130, 0, 0, 0, 0}
	for i, v := range want {
		if got.Data()[i] != v {
			t.Errorf("box values %v, want %v", got.Data(), want)
			break
		}
	}
	if boxes.Data()[0] != -10 {
		t.Error("ResizeBoxes modified its input")
	}
	for _, c := range []struct {
		name  string
		boxes *tensor.Tensor
		from  transform.Size
	}{
		{"nil", nil, transform.Size{H: 1, W: 1}},
		{"(K,3)", tensor.New(2, 3), transform.Size{H: 1, W: 1}},
		{"zero size", tensor.New(1, 4), transform.Size{H: 0, W: 5}},
	} {
		if _, err := transform.ResizeBoxes(c.boxes, c.from, transform.Size{H: 3, W: 3}); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func TestBatchImages(t *testing.T) {
	a := tensor.MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, 1, 2, 3)
	b := tensor.MustFromSlice([]float32{7, 8, 9, 10, 11}, 1, 5, 1)
	out, err := transform.BatchImages([]*tensor.Tensor{a, b}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out.Shape()) != "[2 1 8 4]" {
		t.Fatalf("shape %v, want [2 1 8 4]", out.Shape())
	}
	want := []float32{
		1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		7, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 10, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	}
	if fmt.Sprint(out.Data()) != fmt.Sprint(want) {
		t.Errorf("batch\n got %v\nwant %v", out.Data(), want)
	}
	if out, _ := transform.BatchImages([]*tensor.Tensor{a}, 0); fmt.Sprint(out.Shape()) != "[1 1 2 3]" {
		t.Errorf("SizeDivisible 0: shape %v, want no rounding", out.Shape())
	}
	if _, err := transform.BatchImages([]*tensor.Tensor{a, tensor.New(2, 2, 2)}, 32); err == nil {
		t.Error("mixed channel counts: no error")
	}
	if _, err := transform.BatchImages(nil, 32); err == nil {
		t.Error("no images: no error")
	}
}
