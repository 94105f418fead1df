package data

import (
	"bytes"
	"image"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

// oneShape returns a sample with one shape on a plain (noise-free) background.
func oneShape(t *testing.T, kind string, i int) Sample {
	t.Helper()
	ds, err := Shapes(ShapesConfig{N: i + 1, Width: 120, Height: 90, Classes: []string{kind}, MinObjects: 1, MaxObjects: 1,
		MinSize: 10, MaxSize: 60, Noise: -1, Distractors: -1, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ds.Sample(i)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// colourExtent is the extent of the pixels within tol (per channel) of col.
func colourExtent(img *image.RGBA, col []uint8, tol int) (box.Box, int) {
	got := box.Box{X1: 1e9, Y1: 1e9, X2: -1, Y2: -1}
	n := 0
	w, h := img.Rect.Dx(), img.Rect.Dy()
	for y := range h {
		for x := range w {
			p := img.Pix[img.PixOffset(x, y):]
			if absInt(int(p[0])-int(col[0])) <= tol && absInt(int(p[1])-int(col[1])) <= tol && absInt(int(p[2])-int(col[2])) <= tol {
				n++
				got = box.Box{X1: min(got.X1, float32(x)), Y1: min(got.Y1, float32(y)), X2: max(got.X2, float32(x+1)), Y2: max(got.Y2, float32(y+1))}
			}
		}
	}
	return got, n
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func centreColour(s Sample) []uint8 {
	b := s.Boxes[0]
	img := s.Image.(*image.RGBA)
	return append([]uint8(nil), img.Pix[img.PixOffset(int((b.X1+b.X2)/2), int((b.Y1+b.Y2)/2)):][:3]...)
}

func TestFlipFollowsPixels(t *testing.T) {
	for _, kind := range []string{Rectangle, Ellipse, Triangle, Cross} {
		for i := range 8 {
			s := oneShape(t, kind, i)
			col := centreColour(s)
			before := append([]uint8(nil), s.Image.(*image.RGBA).Pix...)
			boxes := append([]box.Box(nil), s.Boxes...)
			f := FlipHorizontal(s)
			if got, _ := colourExtent(f.Image.(*image.RGBA), col, 0); got != f.Boxes[0] {
				t.Fatalf("%s %d: flipped box %v, the shape's pixels span %v", kind, i, f.Boxes[0], got)
			}
			if !bytes.Equal(before, s.Image.(*image.RGBA).Pix) || !equalBoxes(boxes, s.Boxes) {
				t.Fatal("FlipHorizontal changed its input")
			}
			ff := FlipHorizontal(f)
			if !bytes.Equal(ff.Image.(*image.RGBA).Pix, before) || !equalBoxes(ff.Boxes, boxes) {
				t.Fatalf("%s %d: flip twice is not the identity", kind, i)
			}
		}
	}
}

func TestScaleJitterFollowsPixels(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, kind := range []string{Rectangle, Ellipse, Cross} {
		for i := range 6 {
			s := oneShape(t, kind, i)
			col := centreColour(s)
			out, err := ScaleJitter{Min: 0.5, Max: 2}.Augment(s, rng)
			if err != nil {
				t.Fatal(err)
			}
			b := out.Boxes[0]
			fx := float32(out.Width) / float32(s.Width)
			if out.Image.Bounds().Dx() != out.Width || out.Image.Bounds().Dy() != out.Height {
				t.Fatal("Width/Height do not match the image")
			}
			if d := b.X2/s.Boxes[0].X2 - fx; d > 1e-5 || d < -1e-5 {
				t.Fatalf("box scaled by %g, image by %g", b.X2/s.Boxes[0].X2, fx)
			}
			got, n := colourExtent(out.Image.(*image.RGBA), col, 3)
			if n == 0 {
				t.Fatalf("%s %d: the shape vanished", kind, i)
			}
			// Bilinear edges blend, so allow a pixel either way.
			if got.X1 < b.X1-1 || got.Y1 < b.Y1-1 || got.X2 > b.X2+1 || got.Y2 > b.Y2+1 ||
				got.X1 > b.X1+2 || got.Y1 > b.Y1+2 || got.X2 < b.X2-2 || got.Y2 < b.Y2-2 {
				t.Fatalf("%s %d (x%.2f): box %v, the shape's pixels span %v", kind, i, fx, b, got)
			}
		}
	}
}

func TestColorJitter(t *testing.T) {
	s := oneShape(t, Ellipse, 0)
	before := append([]uint8(nil), s.Image.(*image.RGBA).Pix...)
	same, err := ColorJitter{}.Augment(s, rand.New(rand.NewSource(1)))
	if err != nil || !bytes.Equal(same.Image.(*image.RGBA).Pix, before) {
		t.Fatalf("zero ColorJitter changed the image (%v)", err)
	}
	cj := ColorJitter{Brightness: 0.3, Contrast: 0.3, Saturation: 0.3, Hue: 0.05}
	a, err := cj.Augment(s, rand.New(rand.NewSource(2)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := cj.Augment(s, rand.New(rand.NewSource(2)))
	c, _ := cj.Augment(s, rand.New(rand.NewSource(3)))
	pa := a.Image.(*image.RGBA).Pix
	if !bytes.Equal(pa, b.Image.(*image.RGBA).Pix) || bytes.Equal(pa, c.Image.(*image.RGBA).Pix) || bytes.Equal(pa, before) {
		t.Fatal("ColorJitter is not a deterministic function of the rng")
	}
	if !equalBoxes(a.Boxes, s.Boxes) || !bytes.Equal(before, s.Image.(*image.RGBA).Pix) {
		t.Fatal("ColorJitter changed the boxes or its input")
	}
	for i := 3; i < len(pa); i += 4 {
		if pa[i] != 255 {
			t.Fatal("alpha not opaque")
		}
	}
	// Red shifted by a third of a turn is green, by two thirds blue.
	for _, tc := range []struct {
		d    float32
		want [3]float32
	}{{1.0 / 3, [3]float32{0, 1, 0}}, {2.0 / 3, [3]float32{0, 0, 1}}, {-1.0 / 6, [3]float32{1, 0, 1}}, {0.5, [3]float32{0, 1, 1}}} {
		p := []float32{1, 0, 0}
		shiftHue(p, tc.d)
		for k := range 3 {
			if d := p[k] - tc.want[k]; d > 1e-5 || d < -1e-5 {
				t.Fatalf("red shifted by %g: %v, want %v", tc.d, p, tc.want)
			}
		}
	}
	// A hue shift and its inverse give the image back within rounding.
	px := []float32{0.9, 0.2, 0.1, 0.3, 0.6, 0.8, 0.5, 0.5, 0.5, 0.1, 0.9, 0.4}
	orig := append([]float32(nil), px...)
	shiftHue(px, 0.3)
	if px[0] == orig[0] && px[1] == orig[1] {
		t.Fatal("hue shift did nothing")
	}
	shiftHue(px, -0.3)
	for i := range px {
		if d := px[i] - orig[i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("hue round trip %v, want %v", px, orig)
		}
	}
}

func TestHFlipProbability(t *testing.T) {
	s := oneShape(t, Rectangle, 0)
	rng := rand.New(rand.NewSource(9))
	flips := 0
	for range 400 {
		out, err := HFlip{P: 0.5}.Augment(s, rng)
		if err != nil {
			t.Fatal(err)
		}
		if out.Boxes[0] != s.Boxes[0] {
			flips++
		}
	}
	if flips < 160 || flips > 240 {
		t.Fatalf("%d flips in 400 at p=0.5", flips)
	}
	for _, p := range []float64{0, 1} {
		out, _ := HFlip{P: p}.Augment(s, rng)
		if (out.Boxes[0] != s.Boxes[0]) != (p == 1) {
			t.Fatalf("P=%g", p)
		}
	}
}

func TestAugmentErrors(t *testing.T) {
	s := oneShape(t, Rectangle, 0)
	rng := rand.New(rand.NewSource(1))
	tests := []struct {
		a    Augmenter
		want string
	}{
		{HFlip{P: 1.5}, "probability"},
		{ScaleJitter{Min: 0, Max: 1}, "ScaleJitter"},
		{ScaleJitter{Min: 2, Max: 1}, "ScaleJitter"},
		{ScaleJitter{Min: 1, Max: 1, KeepSize: true, MinVisible: 2}, "MinVisible"},
		{ColorJitter{Hue: 0.7}, "hue"},
		{ColorJitter{Contrast: -1}, "must be >= 0"},
		{Pipeline{HFlip{P: 0.5}, nil}, "step 1 is nil"},
		{AugmenterFunc(func(s Sample, _ *rand.Rand) (Sample, error) { return Resize(s, 0, 5) }), "size out of range"},
	}
	for _, tc := range tests {
		if _, err := tc.a.Augment(s, rng); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "data: ") {
			t.Errorf("%#v: got %v, want %q", tc.a, err, tc.want)
		}
	}
}

func TestScaleJitterKeepSize(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	kept, dropped, in, out := 0, 0, 0, 0
	for _, kind := range []string{Rectangle, Ellipse, Cross} {
		for i := range 10 {
			s := oneShape(t, kind, i)
			col := centreColour(s)
			r, err := ScaleJitter{Min: 0.5, Max: 2, KeepSize: true}.Augment(s, rng)
			if err != nil {
				t.Fatal(err)
			}
			if r.Width != s.Width || r.Height != s.Height || r.Image.Bounds() != s.Image.Bounds() {
				t.Fatalf("KeepSize changed the size to %dx%d", r.Width, r.Height)
			}
			if err := r.Check(2); err != nil {
				t.Fatal(err)
			}
			if len(r.Boxes) == 0 {
				dropped++
				continue
			}
			kept++
			b := r.Boxes[0]
			if b.Width() > s.Boxes[0].Width() {
				in++
			} else {
				out++
			}
			got, n := colourExtent(r.Image.(*image.RGBA), col, 3)
			if n == 0 || got.X1 < b.X1-1 || got.Y1 < b.Y1-1 || got.X2 > b.X2+1 || got.Y2 > b.Y2+1 ||
				got.X1 > b.X1+2 || got.Y1 > b.Y1+2 || got.X2 < b.X2-2 || got.Y2 < b.Y2-2 {
				t.Fatalf("%s %d: box %v, the shape's pixels span %v", kind, i, b, got)
			}
		}
	}
	if kept < 15 || in == 0 || out == 0 {
		t.Fatalf("kept %d (zoomed in %d, out %d), dropped %d", kept, in, out, dropped)
	}
	t.Logf("kept %d (zoomed in %d, out %d), dropped %d", kept, in, out, dropped)
}
