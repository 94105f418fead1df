//go:build ignore

// genlogo draws the kernel's logos: a Go-blue tile with a white detection box
// and its label tab. Run with `go generate ./kernel/kernelspec`.
package main

import (
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
)

func main() {
	for _, n := range []int{32, 64} {
		if err := write(n); err != nil {
			log.Fatal(err)
		}
	}
}

func write(n int) error {
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	blue := color.NRGBA{0x00, 0xAD, 0xD8, 0xFF}
	white := color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF}
	r := float64(n) / 6 // corner radius
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if inRounded(float64(x)+0.5, float64(y)+0.5, float64(n), r) {
				img.Set(x, y, blue)
			}
		}
	}
	s := n / 32 // stroke
	if s < 1 {
		s = 1
	}
	x0, y0, x1, y1 := n*7/32, n*11/32, n*25/32, n*25/32
	for t := 0; t < 2*s; t++ {
		for x := x0; x < x1; x++ {
			img.Set(x, y0+t, white)
			img.Set(x, y1-1-t, white)
		}
		for y := y0; y < y1; y++ {
			img.Set(x0+t, y, white)
			img.Set(x1-1-t, y, white)
		}
	}
	for y := n * 6 / 32; y < y0; y++ { // label tab above the box
		for x := x0; x < n*17/32; x++ {
			img.Set(x, y, white)
		}
	}
	f, err := os.Create(fmtName(n))
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fmtName(n int) string {
	if n == 32 {
		return "logo-32x32.png"
	}
	return "logo-64x64.png"
}

func inRounded(x, y, n, r float64) bool {
	cx := clamp(x, r, n-r)
	cy := clamp(y, r, n-r)
	return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
