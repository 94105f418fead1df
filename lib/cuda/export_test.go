package cuda

// NewFakeBackend returns a Backend over the test fake device (kernels run
// as Go loops, GEMMs through nn.CPU), for backend_gpu_test.go's harness
// when DETLAB_CUDA_FAKE is set. lazy makes the device run queued work
// only at synchronizations (DETLAB_CUDA_FAKE=lazy), so that a host read
// or write missing its synchronization gives wrong results.
func NewFakeBackend(lazy bool) *Backend {
	f := newFakeGPU()
	f.fast = true
	f.lazy = lazy
	return newBackend(f, 0, "cuda:0 (fake device)", false)
}

// SetFakeLazy switches b's fake device to lazy or eager execution, after
// running what is queued.
func SetFakeLazy(b *Backend, lazy bool) error {
	if err := b.Synchronize(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.g.(*fakeGPU).lazy = lazy
	return nil
}

// UseForNewBackend makes NewBackend return b (nil: open GPUs again), so
// that code opening a device itself (lib/fasterrcnn's Config.Device) runs
// on a fake backend.
func UseForNewBackend(b *Backend) {
	if b == nil {
		openHook = nil
		return
	}
	openHook = func(int) (*Backend, error) { return b, nil }
}

// DropSync makes the n-th next Sync of b that has work pending return
// without waiting (n <= 0 cancels): one synchronization point removed.
func DropSync(b *Backend, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropSync = max(n, 0)
}

// SetSyncEach turns b's sync-per-operation mode on or off (as
// DETLAB_CUDA_SYNC=1 does at creation) and returns the previous setting.
func SetSyncEach(b *Backend, on bool) (was bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	was = b.syncEach
	b.syncEach = on
	if on && b.why == "" {
		b.why = "test"
	}
	return was
}
