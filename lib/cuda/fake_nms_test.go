package cuda

import (
	"math"
	"unsafe"

	"github.com/detlab/detlab/lib/box"
)

// The fake device's detlab_nms_mask, written from kernels.h: for each of
// the n boxes i, every one of the ceil(n/64) mask words, bit k of word w
// set when j = 64w+k > i and the pair's IoU (lib/box's arithmetic,
// box.NMSPairSuppressed) is >= cut.
func init() {
	fakeKernels["detlab_nms_mask"] = func(f *fakeGPU, slots []uint64) error {
		n := int(int32(uint32(slots[1])))
		cut := math.Float32frombits(uint32(slots[2]))
		words := (n + 63) / 64
		boxes, err := f.f32(slots[0], 4*n)
		if err != nil {
			return err
		}
		var mask []uint64
		if n > 0 {
			b, err := f.bytesAt(slots[3], 8*n*words)
			if err != nil {
				return err
			}
			mask = unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n*words)
		}
		at := func(i int) box.Box {
			return box.Box{X1: boxes[4*i], Y1: boxes[4*i+1], X2: boxes[4*i+2], Y2: boxes[4*i+3]}
		}
		for i := range n {
			for w := range words {
				var bits uint64
				for k := range 64 {
					if j := 64*w + k; j > i && j < n && box.NMSPairSuppressed(at(i), at(j), cut) {
						bits |= 1 << k
					}
				}
				mask[i*words+w] = bits
			}
		}
		return nil
	}
}
