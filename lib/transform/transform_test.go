package transform_test

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/transform"
	"github.com/detlab/detlab/lib/weights"
)

// goldenConfig reads the transform configuration from the file's metadata,
// so a regenerated variant is tested with its own sizes.
func goldenConfig(t *testing.T, f *weights.File) transform.Config {
	t.Helper()
	var c struct {
		MinSize       json.RawMessage `json:"min_size"`
		MaxSize       int             `json:"max_size"`
		SizeDivisible int             `json:"size_divisible"`
		Mean          []float64       `json:"image_mean"`
		Std           []float64       `json:"image_std"`
	}
	golden.Metadata(t, f, "config", &c)
	cfg := transform.Config{MaxSize: c.MaxSize, SizeDivisible: c.SizeDivisible, Mean: c.Mean, Std: c.Std}
	var one int
	if err := json.Unmarshal(c.MinSize, &one); err == nil {
		cfg.MinSize = []int{one}
	} else if err := json.Unmarshal(c.MinSize, &cfg.MinSize); err != nil {
		t.Fatalf("min_size %s: %v", c.MinSize, err)
	}
	return cfg
}

func sizesOf(t *testing.T, e *weights.Entry) []transform.Size {
	t.Helper()
	var s []transform.Size
	for i := 0; i+1 < len(e.I64Data); i += 2 {
		s = append(s, transform.Size{H: int(e.I64Data[i]), W: int(e.I64Data[i+1])})
	}
	return s
}

// The README's tolerances per tensor kind (resized.i is per image, below).
var (
	tolBoxes  = golden.Tol{Atol: 5e-4, RelL2: 1e-6}
	tolScale  = golden.Tol{Atol: 5e-6}
	tolResize = []golden.Tol{{Atol: 1e-4, RelL2: 1e-5}, {Atol: 1e-5, RelL2: 2e-6}, {Atol: 2e-4, RelL2: 5e-5}}
)

func resizeTol(i int) golden.Tol {
	if i < len(tolResize) {
		return tolResize[i]
	}
	return golden.Tol{Atol: 2e-4, RelL2: 5e-5} // the loosest stated
}

func TestGoldenTransform(t *testing.T) {
	f := golden.Load(t, "transform.safetensors")
	cfg := goldenConfig(t, f)
	tr, err := transform.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var images, boxes []*tensor.Tensor
	for i := 0; golden.Has(f, fmt.Sprintf("images.%d", i)); i++ {
		images = append(images, golden.Entry(t, f, fmt.Sprintf("images.%d", i)).Tensor())
		boxes = append(boxes, golden.Entry(t, f, fmt.Sprintf("boxes.%d", i)).Tensor())
	}
	if len(images) == 0 {
		t.Fatal("no images.N in transform.safetensors")
	}
	il, gotBoxes, err := tr.Apply(images, boxes)
	if err != nil {
		t.Fatal(err)
	}
	wantSizes := sizesOf(t, golden.Entry(t, f, "image_sizes"))
	wantOrig := sizesOf(t, golden.Entry(t, f, "original_sizes"))
	if fmt.Sprint(il.ImageSizes) != fmt.Sprint(wantSizes) || fmt.Sprint(il.OriginalSizes) != fmt.Sprint(wantOrig) {
		t.Fatalf("sizes %v from %v, want %v from %v", il.ImageSizes, il.OriginalSizes, wantSizes, wantOrig)
	}
	golden.Check(t, "scale_factors", il.Scales, golden.Entry(t, f, "scale_factors").F32Data, tolScale)
	// The scales are float32 values and must be those exactly (they decide
	// the output sizes).
	for i, s := range il.Scales {
		if s != golden.Entry(t, f, "scale_factors").F32Data[i] {
			t.Errorf("scale %d = %v, want %v exactly", i, s, golden.Entry(t, f, "scale_factors").F32Data[i])
		}
	}
	wantBatch := golden.Entry(t, f, "batch")
	if !golden.CheckShape(t, "batch", il.Tensor.Shape(), wantBatch.Shape) {
		return
	}
	bs := il.Tensor.Shape()
	c, hp, wp := bs[1], bs[2], bs[3]
	for i := range images {
		want := golden.Entry(t, f, fmt.Sprintf("resized.%d", i))
		sz := il.ImageSizes[i]
		// Crop the image out of the batch; the rest must be exactly zero in
		// both ours and the reference.
		crop := make([]float32, 0, c*sz.H*sz.W)
		var pad, refPad float32
		for ch := range c {
			for y := range hp {
				for x := range wp {
					k := ((i*c+ch)*hp+y)*wp + x
					if y < sz.H && x < sz.W {
						crop = append(crop, il.Tensor.Data()[k])
						continue
					}
					pad = max(pad, float32(math.Abs(float64(il.Tensor.Data()[k]))))
					refPad = max(refPad, float32(math.Abs(float64(wantBatch.F32Data[k]))))
				}
			}
		}
		if pad != 0 || refPad != 0 {
			t.Errorf("image %d: padding max |value| %v (reference %v), want exactly 0", i, pad, refPad)
		}
		golden.Check(t, fmt.Sprintf("resized.%d", i), crop, want.F32Data, resizeTol(i))
		golden.Check(t, fmt.Sprintf("boxes_resized.%d", i), gotBoxes[i].Data(), golden.Entry(t, f, fmt.Sprintf("boxes_resized.%d", i)).F32Data, tolBoxes)
	}
	// The whole batch against the reference batch, at the loosest image
	// tolerance.
	golden.Check(t, "batch", il.Tensor.Data(), wantBatch.F32Data, golden.Tol{Atol: 2e-4})

	var post []*tensor.Tensor
	for i := range images {
		post = append(post, golden.Entry(t, f, fmt.Sprintf("post_boxes_in.%d", i)).Tensor())
	}
	back, err := il.Postprocess(post)
	if err != nil {
		t.Fatal(err)
	}
	for i := range back {
		want := golden.Entry(t, f, fmt.Sprintf("post_boxes_out.%d", i)).F32Data
		tol := tolBoxes
		var maxRef float64
		for _, v := range want {
			maxRef = math.Max(maxRef, math.Abs(float64(v)))
		}
		if maxRef > 500 { // README: post_boxes_out.1 (max 611) has atol 1e-3
			tol.Atol = 1e-3
		}
		golden.Check(t, fmt.Sprintf("post_boxes_out.%d", i), back[i].Data(), want, tol)
	}
}
