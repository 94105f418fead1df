package transform

import (
	"fmt"
	"image"
	"image/color"

	"github.com/detlab/detlab/lib/tensor"
)

// FromImage converts an image to a (3,H,W) float32 RGB tensor in [0,1]:
// each 8-bit channel divided by 255, as torchvision's to_tensor does.
// Grayscale, paletted, CMYK and YCbCr images are converted to RGB through
// the standard library's color models; alpha is dropped (pixels are taken
// un-premultiplied for non-opaque RGBA images).
func FromImage(img image.Image) (*tensor.Tensor, error) {
	if img == nil {
		return nil, fmt.Errorf("%w: nil image", ErrInput)
	}
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("%w: image has zero size %dx%d", ErrInput, h, w)
	}
	out := tensor.New(3, h, w)
	d := out.Data()
	plane := h * w
	parallelRows(h, w, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			for x := range w {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				i := y*w + x
				d[i] = float32(c.R) / 255
				d[plane+i] = float32(c.G) / 255
				d[2*plane+i] = float32(c.B) / 255
			}
		}
	})
	return out, nil
}

// ApplyImages converts images with FromImage and runs Apply on them.
func (t *Transform) ApplyImages(images []image.Image, boxes []*tensor.Tensor) (*ImageList, []*tensor.Tensor, error) {
	ts := make([]*tensor.Tensor, len(images))
	for i, img := range images {
		var err error
		if ts[i], err = FromImage(img); err != nil {
			return nil, nil, fmt.Errorf("image %d: %w", i, err)
		}
	}
	return t.Apply(ts, boxes)
}
