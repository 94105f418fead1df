package transform_test

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/detlab/detlab/internal/allocs"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/transform"
)

// dirtyBuffers hands out buffers full of NaN (an arena's contents are
// undefined) and counts what is outstanding.
type dirtyBuffers struct{ out int }

func (d *dirtyBuffers) Get(n int) []float32 {
	d.out++
	b := make([]float32, n)
	for i := range b {
		b[i] = float32(math.NaN())
	}
	return b
}

func (d *dirtyBuffers) Put([]float32) { d.out-- }

func TestApplyWithMatchesApply(t *testing.T) {
	tests := []struct {
		name   string
		sizes  [][2]int
		train  bool
		minLen []int
		div    int
	}{
		{"one image, same size", [][2]int{{64, 64}}, false, []int{64}, 32},
		{"shrink and pad", [][2]int{{70, 50}, {40, 90}}, false, []int{48}, 32},
		{"grow, no divisor", [][2]int{{20, 30}, {33, 17}, {25, 25}}, false, []int{40}, 0},
		{"training sizes", [][2]int{{50, 60}, {60, 50}}, true, []int{30, 40, 50}, 16},
	}
	for _, tc := range tests {
		rng := rand.New(rand.NewSource(3))
		var images, boxes []*tensor.Tensor
		for _, s := range tc.sizes {
			img := tensor.New(3, s[0], s[1])
			for i := range img.Data() {
				img.Data()[i] = rng.Float32()
			}
			images = append(images, img)
			boxes = append(boxes, tensor.MustFromSlice([]float32{1, 2, 10, 12}, 1, 4))
		}
		cfg := transform.Defaults()
		cfg.MinSize, cfg.MaxSize, cfg.SizeDivisible = tc.minLen, 100, tc.div
		run := func(buf transform.Buffers) (*transform.ImageList, []*tensor.Tensor) {
			tr, err := transform.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			tr.Train, tr.Rand = tc.train, rand.New(rand.NewSource(9))
			il, b, err := tr.ApplyWith(buf, images, boxes)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			return il, b
		}
		// The reference: the public pieces one after the other.
		tr, _ := transform.New(cfg)
		draw := rand.New(rand.NewSource(9))
		var resized, wantBoxes []*tensor.Tensor
		for i, img := range images {
			norm, err := tr.Normalize(img)
			if err != nil {
				t.Fatal(err)
			}
			ms := tc.minLen[len(tc.minLen)-1]
			if tc.train && len(tc.minLen) > 1 {
				ms = tc.minLen[draw.Intn(len(tc.minLen))]
			}
			r, _, err := tr.Resize(norm, ms)
			if err != nil {
				t.Fatal(err)
			}
			resized = append(resized, r)
			from := transform.Size{H: img.Dim(1), W: img.Dim(2)}
			b, err := transform.ResizeBoxes(boxes[i], from, transform.Size{H: r.Dim(1), W: r.Dim(2)})
			if err != nil {
				t.Fatal(err)
			}
			wantBoxes = append(wantBoxes, b)
		}
		batch, err := transform.BatchImages(resized, tc.div)
		if err != nil {
			t.Fatal(err)
		}
		want := &transform.ImageList{Tensor: batch}
		for _, r := range resized {
			want.ImageSizes = append(want.ImageSizes, transform.Size{H: r.Dim(1), W: r.Dim(2)})
		}
		plain, _ := run(nil)
		want.OriginalSizes, want.Scales = plain.OriginalSizes, plain.Scales
		if !slices.Equal(plain.Tensor.Data(), batch.Data()) {
			t.Errorf("%s: Apply's batch differs from the pieces'", tc.name)
		}
		buf := &dirtyBuffers{}
		got, gotBoxes := run(buf)
		if buf.out != 1 {
			t.Errorf("%s: %d buffers outstanding, want 1 (the batch)", tc.name, buf.out)
		}
		if !slices.Equal(got.Tensor.Shape(), want.Tensor.Shape()) || !slices.Equal(got.ImageSizes, want.ImageSizes) ||
			!slices.Equal(got.OriginalSizes, want.OriginalSizes) || !slices.Equal(got.Scales, want.Scales) {
			t.Fatalf("%s: got %v %v %v %v, want %v %v %v %v", tc.name, got.Tensor.Shape(), got.ImageSizes, got.OriginalSizes, got.Scales,
				want.Tensor.Shape(), want.ImageSizes, want.OriginalSizes, want.Scales)
		}
		for i, v := range want.Tensor.Data() {
			if g := got.Tensor.Data()[i]; math.Float32bits(g) != math.Float32bits(v) {
				t.Fatalf("%s: batch element %d is %v, want %v", tc.name, i, g, v)
			}
		}
		for i := range wantBoxes {
			if !slices.Equal(gotBoxes[i].Data(), wantBoxes[i].Data()) {
				t.Errorf("%s: boxes %d are %v, want %v", tc.name, i, gotBoxes[i].Data(), wantBoxes[i].Data())
			}
		}
	}
}

// stackBuffers hands back the most recently returned buffer that fits
// (as an arena does in a steady training loop).
type stackBuffers struct{ free [][]float32 }

func (f *stackBuffers) Get(n int) []float32 {
	for i := len(f.free) - 1; i >= 0; i-- {
		if b := f.free[i]; cap(b) >= n {
			f.free = slices.Delete(f.free, i, i+1)
			return b[:n]
		}
	}
	return make([]float32, n)
}

func (f *stackBuffers) Put(b []float32) { f.free = append(f.free, b) }

// TestApplyToReusesImageList checks that ApplyTo into one ImageList, over
// batches of different sizes, gives ApplyWith's batch and sizes each time,
// keeps the batch tensor when the buffer and shape repeat, and rescales
// boxes as ResizeRatios says.
func TestApplyToReusesImageList(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	image := func(h, w int) *tensor.Tensor {
		img := tensor.New(3, h, w)
		for i := range img.Data() {
			img.Data()[i] = rng.Float32()
		}
		return img
	}
	cfg := transform.Defaults()
	cfg.MinSize, cfg.MaxSize = []int{48}, 100
	tr, err := transform.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var il transform.ImageList
	buf := &stackBuffers{}
	for _, batch := range [][]*tensor.Tensor{
		{image(70, 50), image(40, 90)}, {image(33, 17)}, {image(70, 50), image(40, 90)},
	} {
		box := tensor.MustFromSlice([]float32{1, 2, 10, 12}, 1, 4)
		boxes := make([]*tensor.Tensor, len(batch))
		for i := range boxes {
			boxes[i] = box
		}
		want, wantBoxes, err := tr.Apply(batch, boxes)
		if err != nil {
			t.Fatal(err)
		}
		before := il.Tensor
		gotBoxes, err := tr.ApplyTo(&il, buf, batch, boxes)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(il.Tensor.Data(), want.Tensor.Data()) || !slices.Equal(il.ImageSizes, want.ImageSizes) ||
			!slices.Equal(il.OriginalSizes, want.OriginalSizes) || !slices.Equal(il.Scales, want.Scales) {
			t.Fatalf("batch of %d: ApplyTo into a reused ImageList differs from Apply", len(batch))
		}
		for i := range batch {
			rh, rw := transform.ResizeRatios(il.OriginalSizes[i], il.ImageSizes[i])
			d := box.Data()
			wantB := []float32{d[0] * rw, d[1] * rh, d[2] * rw, d[3] * rh}
			if !slices.Equal(gotBoxes[i].Data(), wantBoxes[i].Data()) || !slices.Equal(gotBoxes[i].Data(), wantB) {
				t.Errorf("image %d: boxes %v, Apply's %v, by ResizeRatios %v", i, gotBoxes[i].Data(), wantBoxes[i].Data(), wantB)
			}
		}
		again := il.Tensor
		buf.Put(il.Tensor.Data())
		if _, err := tr.ApplyTo(&il, buf, batch, nil); err != nil {
			t.Fatal(err)
		}
		if il.Tensor != again {
			t.Errorf("batch of %d: same buffer and shape, new batch tensor (was %p, now %p; before %p)", len(batch), again, il.Tensor, before)
		}
		buf.Put(il.Tensor.Data())
	}
	if _, err := tr.ApplyTo(nil, buf, []*tensor.Tensor{image(8, 8)}, nil); err == nil {
		t.Error("nil ImageList: no error")
	}
}

// TestApplyToAllocatesNothing checks that a steady training loop's
// transform (same sizes, buffers given back, one ImageList, no boxes)
// allocates nothing, with a batch large enough to resize in parallel.
func TestApplyToAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	images := make([]*tensor.Tensor, 2)
	for i := range images {
		images[i] = tensor.New(3, 150, 170)
		for j := range images[i].Data() {
			images[i].Data()[j] = rng.Float32()
		}
	}
	cfg := transform.Defaults()
	cfg.MinSize, cfg.MaxSize = []int{128}, 200
	tr, err := transform.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var il transform.ImageList
	buf := &stackBuffers{}
	step := func() {
		if _, err := tr.ApplyTo(&il, buf, images, nil); err != nil {
			t.Fatal(err)
		}
		buf.Put(il.Tensor.Data())
	}
	for range 3 {
		step()
	}
	// Not testing.AllocsPerRun (GOMAXPROCS 1 would resize inline); the
	// fewest of three rounds, for a collection or a busy machine.
	const steps = 20
	n, _ := allocs.Fewest(3, steps, step)
	if n >= steps/2 {
		t.Errorf("%d allocations in %d steps, want none", n, steps)
	}
}
