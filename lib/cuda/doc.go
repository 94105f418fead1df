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
// What runs on the device. The kernels are detlab's own CUDA C (kernels/),
// compiled to PTX that is embedded in the binary and JIT-compiled by the
// driver when a backend starts; every launch's arguments are checked
// against the PTX's parameter kinds first. They cover:
//
//   - convolution via im2col and col2im with cuBLAS GEMMs, forward and
//     backward (Backend.Conv2d, Conv2dBackward);
//   - fused ConvBN (Backend.Conv2dFused, nn.FusedConvBackend): the
//     products, then one detlab_conv_epilogue kernel applying a frozen or
//     folded BatchNorm's scale and shift, the residual and the ReLU with
//     lib/nn's arithmetic, so lib/nn's ConvBN (torchvision's body, in
//     training too) makes one pass over the output instead of three;
//   - BatchNorm in training mode entirely on the device
//     (nn.BatchNormTrainBackend: detlab_bn_train_stats computes the
//     float64 two-pass mean and variance, invstd, the running statistics'
//     update and the affine coefficients per channel; detlab_bn_backward_sums
//     and detlab_bn_backward_dx the backward from the device-resident
//     statistics, ReLU mask included; no host round trip), BatchNorm
//     statistics, affine and backward with host statistics
//     (nn.Backend.ChannelStats, nn.BatchNormBackend, composed with cuBLAS),
//     max pooling forward and backward;
//   - the elementwise operations lib/nn's ReLU, Add and AddReLU use
//     (nn.ElementwiseBackend), autocast rounding (nn.RoundingBackend), the
//     SGD step (nn.OptimizerBackend) and the gradient scaler's unscale and
//     Inf/NaN test (nn.ScalerBackend);
//   - RoIAlign forward and backward (roialign.Backend; bit for bit
//     lib/roialign's results, the backward without atomics);
//   - NMS's pairwise IoU masks (box.NMSBackend; the sort, NaN scores,
//     batched offsets and the greedy walk over the masks stay on the host);
//   - clearing new graph tensors (Backend.Zero, nn.Zeroer: cuMemsetD32Async
//     on a managed buffer, so lib/nn's Graph.NewTensor does not pull its
//     pages to the host right before a kernel overwrites them) and
//     gradients (nn.ZeroGradsOn, which lib/train's trainer calls with the
//     model's backend);
//   - the fused ConvBN's backward epilogue (nn.ConvBNBackend: the ReLU mask
//     and frozen BatchNorm scale on the output gradient, the residual
//     gradient) and Linear's bias add and bias gradient (nn.BiasBackend),
//     bit for bit lib/nn's host loops (backward.go).
//
// Matrix products are cublasSgemm_v2 on row-major data by the transpose
// swap, with TF32 off (CUBLAS_DEFAULT_MATH), so results match the CPU's
// float32 up to summation order; the elementwise kernels match lib/nn bit
// for bit (no FMA contraction). Autocast products are native where the
// device has the format (Backend.NativePrecision: bfloat16 from compute
// capability 8.0, float16 from 5.3, with cublasGemmEx): the layers pass
// unrounded operands, which kernels convert to 16 bits on the device, and
// cublasGemmEx / cublasGemmStridedBatchedEx multiply them with float32
// accumulation (precision.go); elsewhere the operands are rounded on the
// device and multiplied in float32.
//
// What still runs on the host, reading and writing the same managed
// memory, in a Faster R-CNN training step: the transform (resize,
// normalize, batching), anchors, proposal decoding, top-k and clipping,
// target assignment and sampling, and the losses.
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
// they run one at a time.
//
// Asynchronous operations: an operation queues its kernels, GEMMs and
// copies on the backend's one stream and returns without waiting, so the
// GPU runs while the host prepares the next launch; stream order runs
// queued work in order, and the device buffers an operation borrowed
// (staging copies, im2col columns) serve the next one at once. Host code
// must not touch an operand or a result of queued work until the backend
// has synchronized: Backend.Sync (nn.Syncer; nearly free when nothing is
// pending) waits, and lib/nn calls it (nn.Sync) before its host operations,
// host backward functions, Graph.NewTensor and Graph.Release, as do
// lib/fasterrcnn's host stages and lib/train's trainer. Writes count too:
// overwriting an input a queued kernel still reads corrupts its result.
// Operations still wait when they must: results copied back to Go memory
// (staged outputs), results the backend or its caller reads on the host
// (NMS masks, ChannelStats and BatchNormBackward's host statistics, not
// BatchNormTrainForward/Backward's; the scaler's Inf/NaN flag), Go memory a
// kernel addresses in place, Prefetch, Free and Close. Stats.Syncs counts
// the waits. A device failure of queued work surfaces at the next
// synchronization (Sync's error, or the *OpError of the operation that
// waits), not at the operation that caused it; set DETLAB_CUDA_SYNC=1
// (SyncEnv, like CUDA_LAUNCH_BLOCKING) to make every operation wait, so
// that the failing operation reports it. A device without concurrent
// managed access (CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS = 0, where
// any host access to managed memory while a kernel runs faults) always
// runs so. Backend.Mode says which.
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
