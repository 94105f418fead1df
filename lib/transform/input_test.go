package transform_test

import (
	"errors"
	"image"
	"image/color"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/transform"
)

func smallConfig() transform.Config {
	cfg := transform.Defaults()
	cfg.MinSize, cfg.MaxSize = []int{32}, 64
	return cfg
}

func TestApplyBadInput(t *testing.T) {
	tr, err := transform.New(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	good := tensor.New(3, 10, 20)
	nan := tensor.New(3, 4, 4)
	nan.Data()[5] = float32(math.NaN())
	inf := tensor.New(3, 4, 4)
	inf.Data()[0] = float32(math.Inf(-1))
	nanBoxes := tensor.MustFromSlice([]float32{0, 0, float32(math.NaN()), 1}, 1, 4)
	cases := []struct {
		name   string
		images []*tensor.Tensor
		boxes  []*tensor.Tensor
		want   string
	}{
		{"no images", nil, nil, "no images"},
		{"nil image", []*tensor.Tensor{nil}, nil, "image 0 must be (C,H,W), got nil"},
		{"2-D image", []*tensor.Tensor{tensor.New(10, 20)}, nil, "image 0 must be (C,H,W)"},
		{"grayscale tensor", []*tensor.Tensor{good, tensor.New(1, 10, 20)}, nil, "image 1 has 1 channels, the transform normalises 3"},
		{"RGBA tensor", []*tensor.Tensor{tensor.New(4, 10, 20)}, nil, "has 4 channels"},
		{"zero height", []*tensor.Tensor{tensor.New(3, 0, 20)}, nil, "image 0 has zero size 0x20"},
		{"zero width", []*tensor.Tensor{tensor.New(3, 5, 0)}, nil, "zero size 5x0"},
		{"NaN pixel", []*tensor.Tensor{good, nan}, nil, "image 1 holds NaN"},
		{"infinite pixel", []*tensor.Tensor{inf}, nil, "image 0 holds NaN or infinite"},
		{"box count", []*tensor.Tensor{good}, []*tensor.Tensor{}, "0 box sets for 1 images"},
		{"box shape", []*tensor.Tensor{good}, []*tensor.Tensor{tensor.New(2, 5)}, "boxes of image 0 must be (K,4)"},
		{"nil boxes entry", []*tensor.Tensor{good}, []*tensor.Tensor{nil}, "boxes of image 0 must be (K,4), got nil"},
		{"NaN box", []*tensor.Tensor{good}, []*tensor.Tensor{nanBoxes}, "boxes of image 0 hold NaN"},
	}
	for _, c := range cases {
		_, _, err := tr.Apply(c.images, c.boxes)
		if err == nil || !errors.Is(err, transform.ErrInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrInput mentioning %q", c.name, err, c.want)
		}
	}
	// A tall thin image whose short side would scale to zero pixels.
	if _, _, err := tr.Apply([]*tensor.Tensor{tensor.New(3, 1, 1000)}, nil); err == nil || !strings.Contains(err.Error(), "zero size") {
		t.Errorf("image scaled to nothing: err = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	mod := func(f func(*transform.Config)) transform.Config {
		c := transform.Defaults()
		f(&c)
		return c
	}
	cases := []struct {
		name string
		cfg  transform.Config
		want string
	}{
		{"no min size", mod(func(c *transform.Config) { c.MinSize = nil }), "MinSize is empty"},
		{"negative min size", mod(func(c *transform.Config) { c.MinSize = []int{800, -1} }), "MinSize"},
		{"zero max size", mod(func(c *transform.Config) { c.MaxSize = 0 }), "MaxSize"},
		{"std length", mod(func(c *transform.Config) { c.Std = c.Std[:2] }), "one value per channel"},
		{"zero std", mod(func(c *transform.Config) { c.Std = []float64{1, 0, 1} }), "Std"},
		{"NaN mean", mod(func(c *transform.Config) { c.Mean = []float64{0, math.NaN(), 0} }), "Mean"},
		{"negative divisor", mod(func(c *transform.Config) { c.SizeDivisible = -32 }), "SizeDivisible"},
	}
	for _, c := range cases {
		if _, err := transform.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

// TestApplyBoxesAndPostprocess: boxes outside the image are rescaled, not
// clipped; empty box sets are valid; mapping back undoes the resize.
func TestApplyBoxesAndPostprocess(t *testing.T) {
	tr, _ := transform.New(smallConfig())
	img := tensor.New(3, 16, 24)
	for i := range img.Data() {
		img.Data()[i] = float32(i%7) / 7
	}
	orig := img.Clone()
	boxes := []*tensor.Tensor{tensor.MustFromSlice([]float32{-8, -4, 30, 20, 2, 2, 6, 6}, 2, 4), tensor.New(0, 4)}
	il, out, err := tr.Apply([]*tensor.Tensor{img, img}, boxes)
	if err != nil {
		t.Fatal(err)
	}
	if il.ImageSizes[0] != (transform.Size{H: 32, W: 48}) || il.OriginalSizes[0] != (transform.Size{H: 16, W: 24}) {
		t.Fatalf("sizes %v from %v", il.ImageSizes, il.OriginalSizes)
	}
	want := []float32{-16, -8, 60, 40, 4, 4, 12, 12}
	for i, v := range want {
		if out[0].Data()[i] != v {
			t.Fatalf("boxes %v, want %v", out[0].Data(), want)
		}
	}
	if out[1].Dim(0) != 0 {
		t.Errorf("empty box set became %v", out[1].Shape())
	}
	back, err := il.Postprocess(out)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range boxes[0].Data() {
		if back[0].Data()[i] != v {
			t.Errorf("postprocess %v, want %v", back[0].Data(), boxes[0].Data())
			break
		}
	}
	for i, v := range orig.Data() {
		if img.Data()[i] != v {
			t.Fatal("Apply modified its input image")
		}
	}
	if _, err := transform.Postprocess(out, il.ImageSizes[:1], il.OriginalSizes); err == nil {
		t.Error("Postprocess with too few sizes: no error")
	}
}

// TestTrainRandomMinSize: in training each image draws its MinSize from the
// configured list with the injected source; evaluation always uses the last.
func TestTrainRandomMinSize(t *testing.T) {
	cfg := smallConfig()
	cfg.MinSize = []int{16, 24, 32}
	cfg.MaxSize = 1000
	tr, _ := transform.New(cfg)
	img := tensor.New(3, 8, 8)
	sizes := func() map[int]int {
		seen := map[int]int{}
		for range 60 {
			il, _, err := tr.Apply([]*tensor.Tensor{img}, nil)
			if err != nil {
				t.Fatal(err)
			}
			seen[il.ImageSizes[0].H]++
		}
		return seen
	}
	if s := sizes(); len(s) != 1 || s[32] != 60 {
		t.Errorf("eval sizes %v, want always 32", s)
	}
	tr.Train = true
	tr.Rand = rand.New(rand.NewSource(1))
	first := sizes()
	if len(first) != 3 {
		t.Errorf("train sizes %v, want all of 16, 24, 32", first)
	}
	tr.Rand = rand.New(rand.NewSource(1))
	if again := sizes(); len(again) != len(first) || again[16] != first[16] || again[24] != first[24] {
		t.Errorf("same seed gave %v then %v", first, again)
	}
}

func TestFromImage(t *testing.T) {
	rgba := image.NewRGBA(image.Rect(10, 20, 13, 22)) // non-zero origin
	rgba.Set(10, 20, color.RGBA{255, 0, 51, 255})
	rgba.Set(12, 21, color.RGBA{0, 102, 255, 255})
	gray := image.NewGray(image.Rect(0, 0, 2, 1))
	gray.SetGray(1, 0, color.Gray{Y: 204})
	pal := image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.RGBA{10, 20, 30, 255}})
	cmyk := image.NewCMYK(image.Rect(0, 0, 1, 1))
	cmyk.SetCMYK(0, 0, color.CMYK{C: 255, M: 0, Y: 0, K: 0}) // cyan
	cases := []struct {
		name string
		img  image.Image
		h, w int
		at   [2]int // y, x
		rgb  [3]float32
	}{
		{"RGBA", rgba, 2, 3, [2]int{0, 0}, [3]float32{1, 0, 0.2}},
		{"RGBA corner", rgba, 2, 3, [2]int{1, 2}, [3]float32{0, 0.4, 1}},
		{"gray", gray, 1, 2, [2]int{0, 1}, [3]float32{0.8, 0.8, 0.8}},
		{"paletted", pal, 1, 1, [2]int{0, 0}, [3]float32{10.0 / 255, 20.0 / 255, 30.0 / 255}},
		{"CMYK", cmyk, 1, 1, [2]int{0, 0}, [3]float32{0, 1, 1}},
	}
	for _, c := range cases {
		got, err := transform.FromImage(c.img)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got.Dim(0) != 3 || got.Dim(1) != c.h || got.Dim(2) != c.w {
			t.Errorf("%s: shape %v, want [3 %d %d]", c.name, got.Shape(), c.h, c.w)
			continue
		}
		for ch := range 3 {
			if v := got.At(ch, c.at[0], c.at[1]); v != c.rgb[ch] {
				t.Errorf("%s: channel %d at %v = %v, want %v", c.name, ch, c.at, v, c.rgb[ch])
			}
		}
	}
	if _, err := transform.FromImage(image.NewRGBA(image.Rect(0, 0, 0, 5))); err == nil {
		t.Error("empty image: no error")
	}
	if _, err := transform.FromImage(nil); err == nil {
		t.Error("nil image: no error")
	}
	tr, _ := transform.New(smallConfig())
	il, _, err := tr.ApplyImages([]image.Image{rgba, gray}, nil)
	if err != nil || il.Tensor.Dim(0) != 2 {
		t.Errorf("ApplyImages: %v, %v", il, err)
	}
}

// TestFromImageMatchesColorModel checks the direct pixel readers against
// color.NRGBAModel on random images of every common type, alpha included.
func TestFromImageMatchesColorModel(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	r := image.Rect(3, -2, 40, 31)
	rgba, nrgba, gray := image.NewRGBA(r), image.NewNRGBA(r), image.NewGray(r)
	for _, pix := range [][]byte{rgba.Pix, nrgba.Pix, gray.Pix} {
		rng.Read(pix)
	}
	for i := 0; i < len(rgba.Pix); i += 4 { // valid premultiplied values
		a := rgba.Pix[i+3]
		for k := range 3 {
			rgba.Pix[i+k] = min(rgba.Pix[i+k], a)
		}
	}
	ycc := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	rng.Read(ycc.Y)
	rng.Read(ycc.Cb)
	rng.Read(ycc.Cr)
	pal := image.NewPaletted(r, color.Palette{color.NRGBA{1, 2, 3, 4}, color.RGBA{50, 60, 70, 80}, color.Gray16{Y: 40000}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(rng.Intn(3))
	}
	cmyk := image.NewCMYK(r)
	rng.Read(cmyk.Pix)
	for _, img := range []image.Image{rgba, nrgba, gray, ycc, pal, cmyk} {
		got, err := transform.FromImage(img)
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				want := [3]uint8{c.R, c.G, c.B}
				for ch := range 3 {
					if v := got.At(ch, y-b.Min.Y, x-b.Min.X); v != float32(want[ch])/255 {
						t.Fatalf("%T at (%d,%d) channel %d: %v, want %v/255", img, x, y, ch, v, want[ch])
					}
				}
			}
		}
	}
}
