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
		{3, 15, 13, 3, 3, 2, 2, 0, 0}, // phase split without padding
		{2, 12, 17, 3, 5, 1, 3, 1, 2}, // phase split, sw does not divide wp
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
			src := newPadPanels(geo, x, s)
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
			src.release()
			if padded := tc.ph > 0 || tc.pw > 0 || tc.sw > 1 && tc.kw > 1; scratch && (ns.gets != btoi(padded) || ns.puts != ns.gets) {
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

// TestPadSplitImage checks the phase-split padded copy against padImage's,
// unused phase slots included, over a buffer that starts as NaN.
func TestPadSplitImage(t *testing.T) {
	for _, tc := range []struct{ c, h, w, ph, pw, sw int }{{1, 1, 1, 1, 1, 2}, {2, 3, 4, 1, 2, 2}, {3, 2, 5, 3, 0, 3}, {2, 4, 3, 0, 1, 2}, {1, 3, 7, 2, 3, 4}} {
		hp, wp := tc.h+2*tc.ph, tc.w+2*tc.pw
		wq := (wp + tc.sw - 1) / tc.sw
		x := make([]float32, tc.c*tc.h*tc.w)
		for i := range x {
			x[i] = float32(i + 1)
		}
		ref := make([]float32, tc.c*hp*wp)
		padImage(ref, x, tc.c, tc.h, tc.w, tc.ph, tc.pw)
		dst := make([]float32, tc.c*hp*tc.sw*wq)
		for i := range dst {
			dst[i] = float32(math.NaN())
		}
		padSplitImage(dst, x, tc.c, tc.h, tc.w, tc.ph, tc.pw, tc.sw)
		for c := 0; c < tc.c; c++ {
			for i := 0; i < hp; i++ {
				for r := 0; r < tc.sw; r++ {
					for q := 0; q < wq; q++ {
						var want float32
						if j := q*tc.sw + r; j < wp {
							want = ref[(c*hp+i)*wp+j]
						}
						if got := dst[((c*hp+i)*tc.sw+r)*wq+q]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("%+v: plane %d row %d phase %d slot %d = %v, want %v", tc, c, i, r, q, got, want)
						}
					}
				}
			}
		}
	}
}

// TestCopyRuns checks copyRuns (the AVX-512 routine where the CPU has it)
// against copyRunsGo for every run width up to 40, including that values
// outside the run's lanes and rows are left untouched.
func TestCopyRuns(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	src := make([]float32, 300)
	for i := range src {
		src[i] = rng.Float32()
	}
	for _, ldd := range []int{32, 33, 40} {
		for n := 1; n <= min(ldd, 40); n++ {
			offs := []int{0, 17, 5, 300 - n, 100}
			maxOff := 300 - n
			got := make([]float32, len(offs)*ldd+3)
			want := make([]float32, len(got))
			for i := range got {
				got[i] = float32(-i)
				want[i] = float32(-i)
			}
			copyRuns(got[1:], src, offs, maxOff, n, ldd)
			copyRunsGo(want[1:], src, offs, n, ldd)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("ldd %d n %d: element %d = %v, want %v", ldd, n, i, got[i], want[i])
				}
			}
		}
	}
}
