package cuda

import (
	"fmt"
	"math"
)

// The RoIAlign kernels on the fake device, written from kernels.h and the
// geometry layout documented in kernels/roialign.cu: the layout as plain
// loops over each roi's samples, the forward as a sum per output value and
// the backward as a scatter over (roi, ph, pw) in order (the gather the
// kernel does adds in that same order).
func init() {
	fakeKernels["detlab_roialign_layout"] = fakeRoIAlignLayout
	fakeKernels["detlab_roialign_forward"] = fakeRoIAlignForward
	fakeKernels["detlab_roialign_backward"] = fakeRoIAlignBackward
}

// slotInt and slotFloat read launch arguments.
func slotInt(slots []uint64, i int) int       { return int(int32(uint32(slots[i]))) }
func slotFloat(slots []uint64, i int) float32 { return math.Float32frombits(uint32(slots[i])) }

// fakeGeom views a geometry buffer of k rois with lists of capacity c.
type fakeGeom struct {
	g          []int32
	k, lists   int
	capacity   int
	outH, outW int
}

func (f *fakeGPU) geom(p uint64, k, outH, outW, capacity int) (fakeGeom, error) {
	g, err := f.i32(p, 6*k+k*(outH+outW)*(1+2*capacity))
	return fakeGeom{g: g, k: k, lists: outH + outW, capacity: capacity, outH: outH, outW: outW}, err
}

func (g fakeGeom) meta(r int) []int32 { return g.g[6*r : 6*r+6] }

func (g fakeGeom) list(r, j int) (idx []int32, w []int32, count *int32) {
	words := 1 + 2*g.capacity
	l := g.g[6*g.k+(r*g.lists+j)*words:][:words]
	return l[1 : 1+g.capacity], l[1+g.capacity:], &l[0]
}

func fakeRoIAlignLayout(f *fakeGPU, slots []uint64) error {
	k, h, w, outH, outW := slotInt(slots, 2), slotInt(slots, 3), slotInt(slots, 4), slotInt(slots, 5), slotInt(slots, 6)
	ratio, scale, aligned, capacity := slotInt(slots, 7), slotFloat(slots, 8), slotInt(slots, 9) != 0, slotInt(slots, 10)
	rois, err := f.f32(slots[0], 5*k)
	if err != nil {
		return err
	}
	g, err := f.geom(slots[1], k, outH, outW, capacity)
	if err != nil {
		return err
	}
	var off float32
	if aligned {
		off = 0.5
	}
	for r := 0; r < k; r++ {
		roi := rois[5*r : 5*r+5]
		x1, y1 := roi[1]*scale-off, roi[2]*scale-off
		ew, eh := roi[3]*scale-off, roi[4]*scale-off
		rw, rh := ew-x1, eh-y1
		if !aligned {
			rw, rh = max(rw, 1), max(rh, 1)
		}
		gridOf := func(extent float32, out int) int {
			if ratio > 0 {
				return ratio
			}
			return int(math.Ceil(float64(extent / float32(out))))
		}
		gh, gw := gridOf(rh, outH), gridOf(rw, outW)
		inv := 1 / float32(max(gh*gw, 1))
		lo, hi := [2]int32{int32(h), int32(w)}, [2]int32{-1, -1}
		for j := 0; j < outH+outW; j++ {
			axis, p, grid, start, bin, size := 0, j, gh, y1, rh/float32(outH), h
			if j >= outH {
				axis, p, grid, start, bin, size = 1, j-outH, gw, x1, rw/float32(outW), w
			}
			idx, wt, count := g.list(r, j)
			n := 0
			put := func(i int, v float32) {
				for a := 0; a < n; a++ {
					if idx[a] == int32(i) {
						wt[a] = int32(math.Float32bits(math.Float32frombits(uint32(wt[a])) + v))
						return
					}
				}
				if n == capacity {
					panic(fmt.Sprintf("fake: roi %d list %d overflows capacity %d", r, j, capacity))
				}
				idx[n], wt[n] = int32(i), int32(math.Float32bits(v))
				n++
			}
			for s := 0; s < grid; s++ {
				y := start + float32(float32(p)*bin) + float32(float32(float32(s)+0.5)*bin)/float32(grid)
				if y < -1 || y > float32(size) {
					continue // outside: counts in inv, adds nothing
				}
				y = max(y, 0)
				if lo := int(y); lo >= size-1 {
					put(size-1, 1) // at or past the last pixel: snaps to it
				} else {
					l := y - float32(lo)
					put(lo, 1-l)
					put(lo+1, l) // a zero weight at y = lo is still listed
				}
			}
			*count = int32(n)
			for _, i := range idx[:n] {
				lo[axis], hi[axis] = min(lo[axis], i), max(hi[axis], i)
			}
		}
		m := g.meta(r)
		m[0], m[1], m[2], m[3], m[4], m[5] = int32(roi[0]), lo[0], hi[0], lo[1], hi[1], int32(math.Float32bits(inv))
	}
	return nil
}

func fakeRoIAlignForward(f *fakeGPU, slots []uint64) error { return fakeRoIAlign(f, slots, true) }

func fakeRoIAlignBackward(f *fakeGPU, slots []uint64) error { return fakeRoIAlign(f, slots, false) }

// fakeRoIAlign walks every output bin's stencil from the layout: forward
// sums the taps of the features (slot 0) into the pooled output (slot 2),
// backward adds the pooled gradient (slot 0) times each tap's weight into
// the feature gradient (slot 2), in the same (roi, channel, bin, tap) order.
func fakeRoIAlign(f *fakeGPU, slots []uint64, forward bool) error {
	n, c, h, w := slotInt(slots, 3), slotInt(slots, 4), slotInt(slots, 5), slotInt(slots, 6)
	k, outH, outW, capacity := slotInt(slots, 7), slotInt(slots, 8), slotInt(slots, 9), slotInt(slots, 10)
	inLen, outLen := n*c*h*w, k*c*outH*outW
	if !forward {
		inLen, outLen = outLen, inLen
	}
	in, err := f.f32(slots[0], inLen)
	if err != nil {
		return err
	}
	g, err := f.geom(slots[1], k, outH, outW, capacity)
	if err != nil {
		return err
	}
	out, err := f.f32(slots[2], outLen)
	if err != nil {
		return err
	}
	feat, pooled := in, out
	if !forward {
		feat, pooled = out, in
	}
	for r := 0; r < k; r++ {
		m := g.meta(r)
		inv := math.Float32frombits(uint32(m[5]))
		for ch := 0; ch < c; ch++ {
			plane := feat[(int(m[0])*c+ch)*h*w:][:h*w]
			for ph := 0; ph < outH; ph++ {
				ry, wy, ny := g.list(r, ph)
				for pw := 0; pw < outW; pw++ {
					cx, wx, nx := g.list(r, outH+pw)
					o := ((r*c+ch)*outH+ph)*outW + pw
					var v float32
					for a := range int(*ny) {
						for b := range int(*nx) {
							tw := math.Float32frombits(uint32(wy[a])) * math.Float32frombits(uint32(wx[b])) * inv
							if i := int(ry[a])*w + int(cx[b]); forward {
								v += tw * plane[i]
							} else {
								plane[i] += pooled[o] * tw
							}
						}
					}
					if forward {
						pooled[o] = v
					}
				}
			}
		}
	}
	return nil
}
