package data

import (
	"bytes"
	"image"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

func TestShapesDeterministic(t *testing.T) {
	a, err := Shapes(ShapesConfig{N: 20, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Shapes(ShapesConfig{N: 20, Seed: 7})
	c, _ := Shapes(ShapesConfig{N: 20, Seed: 8})
	for _, i := range []int{19, 3, 0, 3} { // any order, repeated
		sa, err := a.Sample(i)
		if err != nil {
			t.Fatal(err)
		}
		sb, _ := b.Sample(i)
		if !bytes.Equal(sa.Image.(*image.RGBA).Pix, sb.Image.(*image.RGBA).Pix) || !equalBoxes(sa.Boxes, sb.Boxes) || !slices.Equal(sa.Labels, sb.Labels) {
			t.Fatalf("index %d differs between two datasets with the same seed", i)
		}
		sc, _ := c.Sample(i)
		if bytes.Equal(sa.Image.(*image.RGBA).Pix, sc.Image.(*image.RGBA).Pix) {
			t.Fatalf("index %d is the same for seeds 7 and 8", i)
		}
		other, _ := a.Sample((i + 1) % 20)
		if bytes.Equal(sa.Image.(*image.RGBA).Pix, other.Image.(*image.RGBA).Pix) {
			t.Fatalf("indices %d and %d are the same image", i, (i+1)%20)
		}
	}
}

func TestShapesContent(t *testing.T) {
	ds, err := Shapes(ShapesConfig{N: 60, Width: 200, Height: 150, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ds.NumClasses() != 5 || ds.Classes()[0] != Background {
		t.Fatalf("classes %v", ds.Classes())
	}
	perClass := map[int]int{}
	wide, tall, overlaps := 0, 0, 0
	for i := range ds.Len() {
		s, err := ds.Sample(i)
		if err != nil {
			t.Fatal(err)
		}
		if s.Width != 200 || s.Height != 150 {
			t.Fatalf("size %dx%d", s.Width, s.Height)
		}
		if err := s.Check(ds.NumClasses()); err != nil {
			t.Fatal(err)
		}
		for j, b := range s.Boxes {
			if b.X1 < 0 || b.Y1 < 0 || b.X2 > 200 || b.Y2 > 150 {
				t.Fatalf("sample %d box %v outside the image", i, b)
			}
			perClass[s.Labels[j]]++
			if b.Width() > 1.5*b.Height() {
				wide++
			}
			if b.Height() > 1.5*b.Width() {
				tall++
			}
		}
		iou := box.IoU(s.Boxes, s.Boxes).Data()
		for k, v := range iou {
			if k/len(s.Boxes) < k%len(s.Boxes) && v > 0 {
				overlaps++
			}
		}
	}
	for c := 1; c < 5; c++ {
		if perClass[c] < 10 {
			t.Fatalf("class %d drawn %d times in 60 images", c, perClass[c])
		}
	}
	if wide < 10 || tall < 10 || overlaps < 5 {
		t.Fatalf("little variety: %d wide, %d tall boxes, %d overlapping pairs", wide, tall, overlaps)
	}
}

// TestShapesTightBoxes draws one shape per image on a plain background and
// checks its box is exactly the extent of the pixels of its colour.
func TestShapesTightBoxes(t *testing.T) {
	for _, kind := range []string{Rectangle, Ellipse, Triangle, Cross} {
		ds, err := Shapes(ShapesConfig{N: 25, Width: 96, Height: 80, Classes: []string{kind}, MinObjects: 1, MaxObjects: 1,
			MinSize: 6, Noise: -1, Distractors: -1, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		for i := range ds.Len() {
			s, _ := ds.Sample(i)
			if len(s.Boxes) != 1 {
				t.Fatalf("%s %d: %d boxes", kind, i, len(s.Boxes))
			}
			b := s.Boxes[0]
			img := s.Image.(*image.RGBA)
			cx, cy := int((b.X1+b.X2)/2), int((b.Y1+b.Y2)/2)
			col := img.Pix[img.PixOffset(cx, cy):][:3]
			got := box.Box{X1: 1e9, Y1: 1e9, X2: -1, Y2: -1}
			for y := range 80 {
				for x := range 96 {
					if bytes.Equal(img.Pix[img.PixOffset(x, y):][:3], col) {
						got = box.Box{X1: min(got.X1, float32(x)), Y1: min(got.Y1, float32(y)), X2: max(got.X2, float32(x+1)), Y2: max(got.Y2, float32(y+1))}
					}
				}
			}
			if got != b {
				t.Fatalf("%s %d: box %v, pixels of the shape's colour span %v", kind, i, b, got)
			}
		}
	}
}

func TestShapesConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  ShapesConfig
		want string
	}{
		{ShapesConfig{N: -1}, "negative"},
		{ShapesConfig{Width: 4}, "image size"},
		{ShapesConfig{MinObjects: 5, MaxObjects: 2}, "not a range"},
		{ShapesConfig{MinSize: 50, MaxSize: 20}, "shape size"},
		{ShapesConfig{Classes: []string{"hexagon"}}, `unknown class "hexagon"`},
		{ShapesConfig{Classes: []string{Cross, Cross}}, "twice"},
		{ShapesConfig{Classes: []string{}}, "no classes"},
		{ShapesConfig{MaxIoU: 2}, "MaxIoU"},
	}
	for _, tc := range tests {
		if _, err := Shapes(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
	ds, _ := Shapes(ShapesConfig{N: 3})
	if _, err := ds.Sample(3); err == nil {
		t.Error("index 3 of 3 accepted")
	}
	if cfg := ds.Config(); cfg.Width != 256 || cfg.MaxSize != 128 || len(cfg.Classes) != 4 {
		t.Errorf("defaults %+v", cfg)
	}
}

func TestShapesDrawDirect(t *testing.T) {
	// Each shape's returned box is the extent of the pixels it set.
	rng := rand.New(rand.NewSource(1))
	cfg := ShapesDefaults()
	for _, kind := range cfg.Classes {
		for range 30 {
			img := image.NewRGBA(image.Rect(0, 0, cfg.Width, cfg.Height))
			sh := newShape(kind, rng, cfg)
			b, ok := sh.draw(img, [3]uint8{1, 2, 3})
			if !ok {
				t.Fatalf("%s drew nothing: %+v", kind, sh)
			}
			got := box.Box{X1: 1e9, Y1: 1e9, X2: -1, Y2: -1}
			for y := range cfg.Height {
				for x := range cfg.Width {
					if img.Pix[img.PixOffset(x, y)+3] != 0 {
						got = box.Box{X1: min(got.X1, float32(x)), Y1: min(got.Y1, float32(y)), X2: max(got.X2, float32(x+1)), Y2: max(got.Y2, float32(y+1))}
					}
				}
			}
			if got != b {
				t.Fatalf("%s: box %v, pixels span %v", kind, b, got)
			}
		}
	}
}

func equalBoxes(a, b []box.Box) bool {
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
