// Package cuda runs detlab's heavy kernels on an NVIDIA GPU without cgo.
//
// The CUDA driver (libcuda.so.1) and cuBLAS (libcublas.so.13, .12 or .11)
// are opened at run time with purego, so building and testing detlab needs
// no CUDA toolkit and a machine without a GPU simply reports why there is
// none:
//
//	info, err := cuda.Probe()      // driver, cuBLAS and device list, or why not
//	b, err := cuda.NewBackend(0)   // device 0; *Backend implements nn.Backend
//	defer b.Close()
//	nn.SetBackend(b)
//	arena := nn.NewArenaWith(b.Alloc) // activations in memory host and GPU share
//
// The kernels (convolution via im2col and col2im, BatchNorm statistics and
// affine, max pooling, and the elementwise, rounding, SGD and scaler
// operations of Backend.Add ... Backend.Scale, which lib/nn's ReLU, Add
// and AddReLU use through nn.ElementwiseBackend; Backend.BatchNormBackward
// composes them with cuBLAS for nn.BatchNormBackend) are detlab's own CUDA C
// (kernels/), compiled to PTX that is embedded in the binary and
// JIT-compiled by the driver when a backend starts; every launch's
// arguments are checked against the PTX's parameter kinds first. Matrix
// products are cublasSgemm_v2 on row-major data by the transpose swap,
// with TF32 off (CUBLAS_DEFAULT_MATH), so results match the CPU's float32
// up to summation order. Autocast regions reach the backend with operands
// already rounded by the layers (the backend reports no native reduced
// precision), so they too run as float32 GEMMs.
//
// Memory: tensors stay []float32. Backend.Alloc returns CUDA managed memory
// (cuMemAllocManaged) viewed as a Go slice that host code and kernels both
// address. Ownership is explicit: such a slice lives until Backend.Free or
// Backend.Close, never collected by Go's GC (there are no finalizers).
// Slices a kernel receives that the backend did not allocate (ordinary Go
// memory) are staged: copied into a device buffer, used, and copied back
// when written; on devices that report pageable memory access (HMM, ATS)
// large Go slices are passed as they are. Backend.Prefetch moves a managed
// slice to the GPU ahead of use; MemoryStats reports the backend's device
// memory in use and its peak.
//
// Threads: the backend uses the device's primary context. Every operation
// runs under the backend's mutex with its goroutine locked to its OS thread
// (runtime.LockOSThread) and makes the context current on that thread
// first (cuCtxSetCurrent), so operations may be called from any goroutine;
// they run one at a time. Each operation ends with a stream synchronize, so
// host code may read the results as soon as it returns.
//
// Errors: driver failures read like "cuda: cuMemAlloc:
// CUDA_ERROR_OUT_OF_MEMORY (out of memory)" (type *Error). The nn.Backend
// methods return no error: a device failure inside one (which is not bad
// input but a broken device or driver) panics with a *OpError naming the
// operation; Backend.Err reports the first such failure. Libraries are
// searched in the directories of $DETLAB_CUDA_LIBS (colon separated) first,
// then the dynamic loader's path, then /usr/local/cuda*/lib64,
// /usr/local/nvidia/lib64 and PyTorch's nvidia-* wheels.
package cuda
