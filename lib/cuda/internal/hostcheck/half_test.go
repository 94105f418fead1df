package hostcheck

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/detlab/detlab/lib/nn"
)

func u16b(t *testing.T, b []byte) []uint16 {
	t.Helper()
	v := make([]uint16, len(b)/2)
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	return v
}

// fp16Float widens an IEEE binary16 encoding to float32 (written from the
// format's definition, independently of the kernels).
func fp16Float(h uint16) float32 {
	sign := float32(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	e, m := int(h>>10)&0x1f, float64(h&0x3ff)
	switch e {
	case 0:
		return sign * float32(m*math.Pow(2, -24))
	case 0x1f:
		if m != 0 { // a quiet NaN of the same sign
			return math.Float32frombits(uint32(h&0x8000)<<16 | 0x7fc00000)
		}
		return sign * float32(math.Inf(1))
	}
	return sign * float32((1+m/1024)*math.Pow(2, float64(e-15)))
}

// checkHalf compares 16-bit encodings with the widened reference values
// want (RoundBF16 / RoundFP16 results): bfloat16 bit for bit including NaN
// payloads (the high half of the float32), binary16 by value with NaN for
// NaN, the same sign, and -0 kept.
func checkHalf(t *testing.T, what string, bf16 bool, got []uint16, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i, h := range got {
		w := want[i]
		var ok bool
		if bf16 {
			ok = uint32(h)<<16 == math.Float32bits(w)
		} else {
			g := fp16Float(h)
			ok = math.Float32bits(g) == math.Float32bits(w) ||
				(g != g && w != w && math.Signbit(float64(g)) == math.Signbit(float64(w)))
		}
		if !ok {
			if bad < 5 {
				t.Errorf("%s[%d] = %#04x, want the encoding of %v (%#08x)", what, i, h, w, math.Float32bits(w))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d differ", what, bad, len(want))
	}
}

// TestToHalf checks detlab_to_bf16 and detlab_to_fp16 against
// nn.RoundBF16 / nn.RoundFP16 on the values rounding gets wrong first (ties,
// NaN, Inf, subnormals, fp16 overflow) and random bit patterns, and the
// encodings of a few values against the formats' tables.
func TestToHalf(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	x := roundInputs(rng)
	fixed := []struct {
		v          float32
		bf16, fp16 uint16
	}{
		{1, 0x3f80, 0x3c00},
		{-2, 0xc000, 0xc000},
		{65504, 0x4780, 0x7bff},
		{65519.996, 0x4780, 0x7bff},
		{65520, 0x4780, 0x7c00},           // fp16 overflow: ties away from 65504 to Inf
		{-1e30, 0xf14a, 0xfc00},           // bf16 keeps the range
		{1.0 / (1 << 14), 0x3880, 0x0400}, // smallest fp16 normal
		{1.0 / (1 << 24), 0x3380, 0x0001}, // smallest fp16 subnormal
		{1.0 / (1 << 25), 0x3300, 0x0000}, // tie: to even (0)
		{3.0 / (1 << 25), 0x33c0, 0x0002}, // tie: to even (2)
		{float32(math.Copysign(0, -1)), 0x8000, 0x8000},
		{float32(math.Inf(-1)), 0xff80, 0xfc00},
		{math.Float32frombits(0x3f808000), 0x3f80, 0x3c04}, // bf16 tie to even (down)
		{math.Float32frombits(0x3f818000), 0x3f82, 0x3c0c}, // bf16 tie to even (up)
	}
	for _, f := range fixed {
		x = append(x, f.v)
	}
	for _, tc := range []struct {
		kernel string
		bf16   bool
		ref    func(float32) float32
	}{{"detlab_to_bf16", true, nn.RoundBF16}, {"detlab_to_fp16", false, nn.RoundFP16}} {
		t.Run(tc.kernel, func(t *testing.T) {
			out := launch(t, tc.kernel, 3, 256, []int64{int64(len(x))}, f32b(x), make([]byte, 2*len(x)))
			got := u16b(t, out[1])
			want := make([]float32, len(x))
			for i, v := range x {
				want[i] = tc.ref(v)
			}
			checkHalf(t, tc.kernel, tc.bf16, got, want)
			tail := got[len(got)-len(fixed):]
			for i, f := range fixed {
				w := f.fp16
				if tc.bf16 {
					w = f.bf16
				}
				if tail[i] != w {
					t.Errorf("%s(%v) = %#04x, want %#04x", tc.kernel, f.v, tail[i], w)
				}
			}
		})
	}
}

// TestIm2colHalf checks detlab_im2col_bf16 / _fp16 on random geometries
// (padding, strides, rectangular kernels, 1x1, padded image runs) against
// the patch matrix
// built here from its definition in kernels.h, rounded by nn.RoundBF16 /
// nn.RoundFP16.
func TestIm2colHalf(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	type geom struct{ N, C, H, W, KH, KW, SH, SW, PH, PW int }
	cases := []geom{
		{1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
		{2, 3, 7, 5, 3, 3, 1, 1, 1, 1},
		{3, 2, 9, 8, 1, 1, 1, 1, 0, 0}, // pointwise: (N,C,HW) -> (C,N*HW)
		{2, 4, 10, 11, 7, 7, 2, 2, 3, 3},
		{1, 3, 6, 9, 2, 3, 2, 1, 0, 2},
		{4, 2, 5, 5, 1, 1, 2, 2, 0, 0},
	}
	for range 4 {
		k := 1 + rng.IntN(4)
		cases = append(cases, geom{1 + rng.IntN(3), 1 + rng.IntN(4), k + rng.IntN(9), k + rng.IntN(9), k, k,
			1 + rng.IntN(2), 1 + rng.IntN(2), rng.IntN(2), rng.IntN(2)})
	}
	for ci, g := range cases {
		oh, ow := (g.H+2*g.PH-g.KH)/g.SH+1, (g.W+2*g.PW-g.KW)/g.SW+1
		ldn := oh * ow
		if ci%3 != 0 {
			ldn += 1 + rng.IntN(8) // padded image runs: zeros after each
		}
		x := randn(rng, g.N*g.C*g.H*g.W)
		for i := range x {
			x[i] *= float32(math.Pow(2, float64(rng.IntN(40)-20))) // fp16 subnormals and overflow too
		}
		rows, cols := g.C*g.KH*g.KW, g.N*ldn
		ref := make([]float32, rows*cols)
		for c := 0; c < g.C; c++ {
			for kh := 0; kh < g.KH; kh++ {
				for kw := 0; kw < g.KW; kw++ {
					r := (c*g.KH+kh)*g.KW + kw
					for n := 0; n < g.N; n++ {
						for y := 0; y < oh; y++ {
							for z := 0; z < ow; z++ {
								ih, iw := y*g.SH-g.PH+kh, z*g.SW-g.PW+kw
								if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
									ref[r*cols+n*ldn+y*ow+z] = x[((n*g.C+c)*g.H+ih)*g.W+iw]
								}
							}
						}
					}
				}
			}
		}
		grid, block := smallGrid(rng, len(ref))
		kernels := []struct {
			kernel string
			bf16   bool
			round  func(float32) float32
		}{{"detlab_im2col_bf16", true, nn.RoundBF16}, {"detlab_im2col_fp16", false, nn.RoundFP16}}
		if ci%2 == 1 { // launches alternate index variants: give each kernel both
			kernels[0], kernels[1] = kernels[1], kernels[0]
		}
		for _, tc := range kernels {
			name := fmt.Sprintf("%s/%d_%+v", tc.kernel, ci, g)
			scalars := []int64{int64(g.N), int64(g.C), int64(g.H), int64(g.W), int64(g.KH), int64(g.KW),
				int64(g.SH), int64(g.SW), int64(g.PH), int64(g.PW), int64(oh), int64(ow), int64(ldn)}
			garbage := make([]byte, 2*len(ref))
			for i := range garbage {
				garbage[i] = 0x5a // the kernel must write every element, the padding too
			}
			out := launch(t, tc.kernel, grid, block, scalars, f32b(x), garbage)
			want := make([]float32, len(ref))
			for i, v := range ref {
				want[i] = tc.round(v)
			}
			checkHalf(t, name, tc.bf16, u16b(t, out[1]), want)
		}
	}
}
