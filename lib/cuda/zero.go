package cuda

import "unsafe"

// Zero implements nn.Zeroer: it sets the float32s of x to +0. A slice
// from Alloc is cleared on the device (cuMemsetD32Async on the backend's
// stream, queued like the operations), so its pages stay on, or move to, the GPU
// instead of migrating to the host to be cleared right before kernels
// overwrite them; lib/nn's Graph.NewTensor clears every new tensor this
// way on a graph whose backend is b. Go memory is cleared on the host. A
// slice running past the end of its allocation panics with an *OpError,
// as the operations do.
func (b *Backend) Zero(x []float32) {
	if len(x) == 0 {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(x)))
	b.mu.Lock()
	ours, err := b.mem.contains(p, 4*len(x))
	b.mu.Unlock()
	if err != nil {
		panic(&OpError{Op: "Zero", Err: err})
	}
	if !ours {
		clear(x)
		return
	}
	b.run("Zero", func(s *scope) {
		b.pending.Store(true)
		if err := b.g.memsetD32(uint64(p), 0, len(x)); err != nil {
			s.fail(err)
		}
	})
}
