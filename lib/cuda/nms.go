package cuda

import (
	"fmt"
	"unsafe"

	"github.com/detlab/detlab/lib/box"
)

// NMS on the GPU: Backend implements box.NMSBackend, so box.NMSWith and
// box.BatchedNMSWith (and through them lib/rpn's proposals and lib/roi's
// detections for a model on a GPU) run the O(n²) pairwise IoU tests as
// the detlab_nms_mask kernel, in torchvision's CUDA layout.
//
// What stays on the host, and why: sorting by score (2000 to 12000 keys,
// already a radix-like uint64 sort of a few tens of microseconds in
// lib/box, far below a launch plus a copy, and it must break ties exactly
// as the CPU path does), NaN-score removal, the batched coordinate
// offsets, and the greedy walk over the masks (sequential by nature, n
// steps of at most n/64 word ORs), as in torchvision's nms_kernel.cu.

var _ box.NMSBackend = (*Backend)(nil)

// u64 returns the device address of x (0 for an empty or nil slice).
func (s *scope) u64(x []uint64, acc access) uint64 {
	if len(x) == 0 {
		return 0
	}
	return s.ptr(unsafe.Pointer(&x[0]), 8*len(x), acc)
}

// nmsMaxBoxes bounds NMSMasks' box count: the mask of n boxes holds
// n*ceil(n/64) words (n = 2^20 is 128 GiB), and the kernel indexes rows
// and tiles with C ints.
const nmsMaxBoxes = 1 << 20

// NMSMasks implements box.NMSBackend with the detlab_nms_mask kernel:
// boxes holds n = len(boxes)/4 rows (x1, y1, x2, y2) in NMS's visiting
// order, and masks (n*ceil(n/64) words) gets bit k of word w of row i set
// when box 64w+k > i has an IoU with box i >= cut, computed exactly as
// lib/box's NMS does. Go slices are staged (copied to the device and the
// masks back). Bad lengths, and device failures, are errors.
func (b *Backend) NMSMasks(boxes []float32, cut float32, masks []uint64) error {
	if len(boxes)%4 != 0 {
		return fmt.Errorf("cuda: NMSMasks: %d box values are not a multiple of 4", len(boxes))
	}
	n := len(boxes) / 4
	if n > nmsMaxBoxes {
		return fmt.Errorf("cuda: NMSMasks: %d boxes, at most %d", n, nmsMaxBoxes)
	}
	words := (n + 63) / 64
	if len(masks) != n*words {
		return fmt.Errorf("cuda: NMSMasks: %d mask words for %d boxes, want %d", len(masks), n, n*words)
	}
	if n == 0 {
		return nil
	}
	return b.try("NMSMasks", func(s *scope) {
		s.hostRead = true // the caller walks the masks on the host
		pb, pm := s.f32(boxes, read), s.u64(masks, write)
		s.launch("detlab_nms_mask", nmsGrid(n), pArg(pb), iArg(n), fArg(cut), pArg(pm))
	})
}

// nmsGrid is detlab_nms_mask's grid for n boxes: one block per tile of
// 256 rows by 64 columns, capped at the grid limit (the kernel strides
// over the rest).
func nmsGrid(n int) int {
	if n <= 0 {
		return 0
	}
	rowTiles, words := (n+blockThreads-1)/blockThreads, (n+63)/64
	return min(rowTiles*words, maxGrid)
}

// try is run for operations with an error result: the failure that run
// would panic with comes back as an *OpError.
func (b *Backend) try(op string, body func(s *scope)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			oe, ok := r.(*OpError)
			if !ok {
				panic(r)
			}
			err = oe
		}
	}()
	b.run(op, body)
	return nil
}
