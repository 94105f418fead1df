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
				r, g, bl := pixel(img, b.Min.X+x, b.Min.Y+y)
				i := y*w + x
				d[i] = float32(r) / 255
				d[plane+i] = float32(g) / 255
				d[2*plane+i] = float32(bl) / 255
			}
		}
	})
	return out, nil
}

// pixel returns the 8-bit non-premultiplied RGB of one pixel, exactly as
// color.NRGBAModel converts it, reading common image types directly.
func pixel(img image.Image, x, y int) (r, g, b uint8) {
	switch m := img.(type) {
	case *image.NRGBA:
		p := m.Pix[m.PixOffset(x, y):]
		return p[0], p[1], p[2]
	case *image.RGBA:
		p := m.Pix[m.PixOffset(x, y):]
		if p[3] == 0xff {
			return p[0], p[1], p[2]
		}
		return unpremultiply(m.RGBAAt(x, y).RGBA())
	case *image.Gray:
		v := m.Pix[m.PixOffset(x, y)]
		return v, v, v
	case *image.YCbCr:
		return unpremultiply(m.YCbCrAt(x, y).RGBA())
	}
	c := img.At(x, y)
	if n, ok := c.(color.NRGBA); ok {
		return n.R, n.G, n.B
	}
	return unpremultiply(c.RGBA())
}

// unpremultiply is color.NRGBAModel's conversion of 16-bit premultiplied
// values, keeping 8 bits.
func unpremultiply(r, g, b, a uint32) (uint8, uint8, uint8) {
	switch a {
	case 0xffff:
		return uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)
	case 0:
		return 0, 0, 0
	}
	return uint8((r * 0xffff / a) >> 8), uint8((g * 0xffff / a) >> 8), uint8((b * 0xffff / a) >> 8)
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
