package cuda

// NewFakeBackend returns a Backend over the test fake device (kernels run
// as Go loops, GEMMs through nn.CPU), for backend_gpu_test.go's harness
// when DETLAB_CUDA_FAKE=1.
func NewFakeBackend() *Backend {
	f := newFakeGPU()
	f.fast = true
	return newBackend(f, 0, "cuda:0 (fake device)", false)
}
