package data

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // register JPEG
	_ "image/png"  // register PNG
	"io/fs"
	"os"

	"github.com/detlab/detlab/lib/box"
)

// DecodeImage reads a JPEG or PNG file and returns it as opaque 8-bit RGB
// (alpha dropped; grayscale, paletted, CMYK and 16-bit images converted).
func DecodeImage(path string) (*image.RGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	img, format, err := image.Decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("data: decode %s: %w", path, err)
	}
	if format != "jpeg" && format != "png" {
		return nil, fmt.Errorf("data: %s: unsupported image format %q", path, format)
	}
	return ToRGBA(img), nil
}

// ToRGBA returns img as an opaque *image.RGBA with bounds starting at (0,0),
// converting the color model through the standard library (draw.Draw) and
// compositing any transparency onto black, as dropping alpha from
// premultiplied values does. An opaque *image.RGBA at the origin is returned
// as it is, not copied.
func ToRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	if m, ok := img.(*image.RGBA); ok && b.Min == (image.Point{}) && m.Opaque() {
		return m
	}
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	p := out.Pix
	for i := 3; i < len(p); i += 4 {
		p[i] = 0xff
	}
	return out
}

// imageSize reads only the image header.
func imageSize(path string) (w, h int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(bufio.NewReader(f))
	if err != nil {
		return 0, 0, fmt.Errorf("data: decode %s: %w", path, err)
	}
	if format != "jpeg" && format != "png" {
		return 0, 0, fmt.Errorf("data: %s: unsupported image format %q", path, format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, 0, fmt.Errorf("data: %s: image is %dx%d", path, cfg.Width, cfg.Height)
	}
	return cfg.Width, cfg.Height, nil
}

// imageProblem classifies an image read error as MissingImage or
// CorruptImage.
func imageProblem(path, file string, err error) *Problem {
	k := CorruptImage
	if errors.Is(err, fs.ErrNotExist) {
		k = MissingImage
	}
	entry := "image " + path
	if file == path {
		entry = ""
	}
	return &Problem{Kind: k, File: file, Entry: entry, Detail: err.Error(), Action: "skipped image", Err: err}
}

// keepObject appends object i of s, with box b in place of its own, to out's
// boxes, labels and (when s has them) difficult and crowd flags.
func keepObject(out *Sample, s Sample, i int, b box.Box) {
	out.Boxes = append(out.Boxes, b)
	out.Labels = append(out.Labels, s.Labels[i])
	if i < len(s.Difficult) {
		out.Difficult = append(out.Difficult, s.Difficult[i])
	}
	if i < len(s.Crowd) {
		out.Crowd = append(out.Crowd, s.Crowd[i])
	}
}

// clipSample clips s's boxes to its image and drops those left without area.
func clipSample(s Sample) Sample {
	clipped := box.ClipToImage(s.Boxes, s.Height, s.Width)
	out := s
	out.Boxes, out.Labels, out.Difficult, out.Crowd = nil, nil, nil, nil
	for i, b := range clipped {
		if b.X2 <= b.X1 || b.Y2 <= b.Y1 {
			continue
		}
		keepObject(&out, s, i, b)
	}
	return out
}
