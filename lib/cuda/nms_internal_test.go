package cuda

import (
	"errors"
	"testing"
)

// TestNMSMasksLaunch: one launch of detlab_nms_mask, a block per tile
// (capped at the grid limit);
// a failed launch is an error naming the operation, not a panic, and
// leaves no device buffer behind.
func TestNMSMasksLaunch(t *testing.T) {
	b, f := newFakeBackend(false)
	defer b.Close()
	for _, tc := range []struct{ n, grid int }{{0, 0}, {1, 1}, {64, 1}, {65, 2}, {256, 4}, {257, 2 * 5}, {2000, 8 * 32}, {40000, maxGrid}} {
		if got := nmsGrid(tc.n); got != tc.grid {
			t.Errorf("nmsGrid(%d) = %d, want %d", tc.n, got, tc.grid)
		}
		if tc.n == 0 || tc.n > 2000 { // no launch; too many pairs for the fake
			continue
		}
		f.launches = nil
		if err := b.NMSMasks(make([]float32, 4*tc.n), 0.5, make([]uint64, tc.n*((tc.n+63)/64))); err != nil {
			t.Fatal(err)
		}
		if len(f.launches) != 1 || f.launches[0].name != "detlab_nms_mask" || f.launches[0].grid != tc.grid {
			t.Errorf("%d boxes: launches %+v, want one detlab_nms_mask on %d blocks", tc.n, f.launches, tc.grid)
		}
	}
	cudaErr := &Error{Op: "cuLaunchKernel", Code: 700, Name: "CUDA_ERROR_ILLEGAL_ADDRESS", Desc: "an illegal memory access was encountered"}
	f.fail["launch:detlab_nms_mask"] = cudaErr
	err := b.NMSMasks(make([]float32, 8), 0.5, make([]uint64, 2))
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op != "NMSMasks" || !errors.Is(err, cudaErr) ||
		err.Error() != "cuda: NMSMasks: cuLaunchKernel: CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)" {
		t.Fatalf("failed launch: error %v", err)
	}
	if f.depth != 0 {
		t.Errorf("begin/end unbalanced after a failure: depth %d", f.depth)
	}
	delete(f.fail, "launch:detlab_nms_mask")
	b.Close()
	if f.live() != 0 {
		t.Errorf("%d device buffers leaked", f.live())
	}
}
