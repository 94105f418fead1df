package nn

import (
	"math"
	"math/rand"
	"testing"
)

// nanScratch hands out NaN-filled buffers, so a panel source that leaves
// part of its padded copy unwritten shows up as NaN patches.
type nanScratch struct{ gets, puts int }

func (s *nanScratch) Get(n int) []float32 {
	s.gets++
	b := make([]float32, n+7) // longer than asked, as an arena's may be
	for i := range b {
		b[i] = float32(math.NaN())
	}
	return b
}

func (s *nanScratch) Put([]float32) { s.puts++ }

// TestPadPanels checks that padPanels writes bit for bit what
// im2colPanels (the bounds-checked reference) writes, for strides 1-3,
// asymmetric padding, kernels wider than the input, strips crossing output
// rows, panels starting mid-matrix and kb beyond the stack offset table.
func TestPadPanels(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, tc := range []struct{ c, h, w, kh, kw, sh, sw, ph, pw int }{
		{3, 9, 11, 3, 3, 1, 1, 1, 1},
		{2, 8, 8, 3, 3, 2, 2, 1, 1},
		{3, 15, 13, 7, 7, 2, 2, 3, 3},
		{4, 5, 7, 1, 1, 2, 2, 0, 0},
		{2, 3, 3, 5, 5, 1, 1, 2, 2},
		{1, 1, 1, 3, 3, 1, 1, 1, 1},
		{2, 6, 5, 3, 3, 3, 3, 2, 2},
		{3, 7, 9, 3, 1, 1, 2, 1, 0},
		{2, 9, 6, 1, 3, 2, 1, 0, 1},
		{30, 7, 7, 3, 3, 1, 1, 1, 1},  // 270 rows: kb > padPanelMax
		{2, 40, 37, 3, 3, 1, 1, 1, 1}, // full 32-column runs
	} {
		geo := ConvGeom{N: 1, C: tc.c, H: tc.h, W: tc.w, K: 1, KH: tc.kh, KW: tc.kw, SH: tc.sh, SW: tc.sw, PH: tc.ph, PW: tc.pw}
		geo.OH = (geo.H+2*geo.PH-geo.KH)/geo.SH + 1
		geo.OW = (geo.W+2*geo.PW-geo.KW)/geo.SW + 1
		x := randTensor(rng, 0, tc.c, tc.h, tc.w).Data()
		ref := im2colPanels{geo: geo, x: x}
		rows, cols := geo.C*geo.KH*geo.KW, geo.OH*geo.OW
		for _, scratch := range []bool{false, true} {
			var s Scratch
			ns := &nanScratch{}
			if scratch {
				s = ns
			}
			src, release := newPadPanels(geo, x, s)
			for _, nr := range []int{1, 4, 16, 32} {
				for _, blk := range [][4]int{{0, rows, 0, cols}, {1, rows - 1, 2, cols - 2}, {rows / 2, rows - rows/2, cols / 3, cols - cols/3}} {
					p0, kb, j0, nb := blk[0], blk[1], blk[2], blk[3]
					if kb <= 0 || nb <= 0 {
						continue
					}
					n := (nb + nr - 1) / nr * nr * kb
					got, want := make([]float32, n), make([]float32, n)
					for i := range got {
						got[i] = float32(math.NaN())
					}
					ref.PackPanel(want, nr, p0, kb, j0, nb)
					src.PackPanel(got, nr, p0, kb, j0, nb)
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%+v scratch=%v nr=%d block %v: element %d = %v, want %v", tc, scratch, nr, blk, i, got[i], want[i])
						}
					}
				}
			}
			release()
			if padded := tc.ph > 0 || tc.pw > 0; scratch && (ns.gets != btoi(padded) || ns.puts != ns.gets) {
				t.Errorf("%+v: scratch Get %d times, Put %d times; want %d each", tc, ns.gets, ns.puts, btoi(padded))
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestPadImage checks the padded copy, borders included, over a buffer
// that starts as NaN.
func TestPadImage(t *testing.T) {
	for _, tc := range []struct{ c, h, w, ph, pw int }{{1, 1, 1, 1, 1}, {2, 3, 4, 1, 2}, {3, 2, 5, 3, 0}, {2, 4, 3, 0, 1}} {
		hp, wp := tc.h+2*tc.ph, tc.w+2*tc.pw
		x := make([]float32, tc.c*tc.h*tc.w)
		for i := range x {
			x[i] = float32(i + 1)
		}
		dst := make([]float32, tc.c*hp*wp)
		for i := range dst {
			dst[i] = float32(math.NaN())
		}
		padImage(dst, x, tc.c, tc.h, tc.w, tc.ph, tc.pw)
		for c := 0; c < tc.c; c++ {
			for i := 0; i < hp; i++ {
				for j := 0; j < wp; j++ {
					var want float32
					if y, z := i-tc.ph, j-tc.pw; y >= 0 && y < tc.h && z >= 0 && z < tc.w {
						want = x[(c*tc.h+y)*tc.w+z]
					}
					if got := dst[(c*hp+i)*wp+j]; math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%+v: padded[%d,%d,%d] = %v, want %v", tc, c, i, j, got, want)
					}
				}
			}
		}
	}
}
