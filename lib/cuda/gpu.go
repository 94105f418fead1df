package cuda

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/detlab/detlab/lib/nn"
)

// gpu is what a Backend needs from the driver and cuBLAS. cudaGPU is the
// real one; the tests drive Backend through a fake that runs the kernels
// in Go, so everything above this line is tested without a GPU.
type gpu interface {
	// begin readies the calling goroutine for a sequence of calls (locks
	// it to its OS thread and makes the context current there); end
	// releases it.
	begin() error
	end()
	allocManaged(bytes int) (unsafe.Pointer, error) // zeroed, host and device addressable
	alloc(bytes int) (uint64, error)                // device only
	free(p uint64) error                            // either kind
	// htod copies Go memory to the device on the stream: the source is
	// read before it returns (pageable memory goes through the driver's
	// staging buffer), the device copy happens in stream order.
	htod(dst uint64, src unsafe.Pointer, bytes int) error
	// dtoh copies device memory to Go memory on the stream, in stream
	// order; the caller syncs before reading dst.
	dtoh(dst unsafe.Pointer, src uint64, bytes int) error
	// launch runs kernel name with 1-D grid and block and the packed
	// argument slots (see packArgs).
	launch(name string, grid, block int, slots []uint64) error
	// sgemm is cublasSgemm_v2: column-major C = alpha*op(A)*op(B) + beta*C.
	sgemm(transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, b uint64, ldb int, beta float32, c uint64, ldc int) error
	// gemmEx is cublasGemmStridedBatchedEx (cublasGemmEx for one
	// product): for i < batch, column-major C_i = alpha*op(A_i)*op(B_i) +
	// beta*C_i with A_i = A + i*strideA elements (likewise B_i, C_i), A
	// and B 16-bit encodings of precision p (nn.BFloat16 or nn.Float16),
	// C float32, float32 accumulation. Only called when halfGemm(p).
	gemmEx(p nn.Precision, transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, strideA int64,
		b uint64, ldb int, strideB int64, beta float32, c uint64, ldc int, strideC int64, batch int) error
	// halfGemm reports whether gemmEx multiplies in p on this device.
	halfGemm(p nn.Precision) bool
	// prefetch starts moving managed pages to the device (a hint: a
	// driver without cuMemPrefetchAsync does nothing).
	prefetch(p uint64, bytes int) error
	// memsetD32 sets the n 32-bit words at device address p to v on the
	// stream (cuMemsetD32Async; sync waits for it).
	memsetD32(p uint64, v uint32, n int) error
	// sync waits for the stream; errors of work queued since the last
	// sync surface here.
	sync() error
	// concurrentManaged reports whether host code may touch managed
	// memory while kernels run (CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS).
	concurrentManaged() bool
	// memInfo returns the device's free and total bytes.
	memInfo() (free, total int64, err error)
	close() error
}

// cudaGPU is one device's primary context, a stream, a cuBLAS handle and
// the loaded kernel module.
type cudaGPU struct {
	d      *driverLib
	c      *cublasLib
	dev    int32
	ctx    uintptr
	stream uintptr
	blas   uintptr
	module uintptr
	funcs  map[string]uintptr
	info   DeviceInfo
	// pageable: the device reads ordinary (pageable) host memory directly.
	pageable bool
	// concurrent: host code may access managed memory while kernels run.
	concurrent bool
	// jitLog receives the JIT compiler's error log. It is reached through
	// g (heap memory, which does not move) because the driver gets its
	// address as an integer: a buffer on the goroutine stack could move
	// before the call.
	jitLog []byte
}

// openGPU sets up device ordinal. The caller's goroutine is locked to its
// thread while it runs.
func openGPU(ordinal int) (_ *cudaGPU, err error) {
	d, err := initDriver()
	if err != nil {
		return nil, err
	}
	c, err := loadCUBLAS()
	if err != nil {
		return nil, err
	}
	var n int32
	if err := d.check("cuDeviceGetCount", d.cuDeviceGetCount(&n)); err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= int(n) {
		return nil, fmt.Errorf("cuda: device %d does not exist (%d device(s))", ordinal, n)
	}
	g := &cudaGPU{d: d, c: c, funcs: map[string]uintptr{}}
	if g.info, err = d.deviceInfo(ordinal); err != nil {
		return nil, err
	}
	if err := d.check("cuDeviceGet", d.cuDeviceGet(&g.dev, int32(ordinal))); err != nil {
		return nil, err
	}
	var managed, pageable int32
	if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&managed, attrManagedMemory, g.dev)); err != nil {
		return nil, err
	}
	if managed == 0 {
		return nil, fmt.Errorf("cuda: device %d (%s) cannot allocate managed memory", ordinal, g.info.Name)
	}
	if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&pageable, attrPageableAccess, g.dev)); err != nil {
		return nil, err
	}
	g.pageable = pageable != 0
	var concurrent int32
	if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&concurrent, attrConcurrentManaged, g.dev)); err != nil {
		return nil, err
	}
	g.concurrent = concurrent != 0

	if err := d.check("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(&g.ctx, g.dev)); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	if err := g.begin(); err != nil {
		return nil, err
	}
	defer g.end()
	if err := d.check("cuStreamCreate", d.cuStreamCreate(&g.stream, 0)); err != nil {
		return nil, err
	}
	if err := g.loadModule(); err != nil {
		return nil, err
	}
	if err := cublasError("cublasCreate", c.cublasCreate(&g.blas)); err != nil {
		return nil, err
	}
	if err := cublasError("cublasSetStream", c.cublasSetStream(g.blas, g.stream)); err != nil {
		return nil, err
	}
	if err := cublasError("cublasSetMathMode", c.cublasSetMathMode(g.blas, cublasDefaultMath)); err != nil {
		return nil, err
	}
	return g, nil
}

// loadModule JIT-compiles the embedded PTX (after checking it declares the
// kernels the launcher expects) and looks up every kernel.
func (g *cudaGPU) loadModule() error {
	if err := checkPTX(kernelsPTX); err != nil {
		return err
	}
	image := append([]byte(kernelsPTX), 0)
	g.jitLog = make([]byte, 8192)
	logBuf := g.jitLog
	opts := []int32{jitErrorLogBuffer, jitErrorLogBufferSize}
	vals := []uintptr{uintptr(unsafe.Pointer(&logBuf[0])), uintptr(len(logBuf))}
	code := g.d.cuModuleLoadDataEx(&g.module, &image[0], uint32(len(opts)), &opts[0], &vals[0])
	runtime.KeepAlive(g)
	if err := g.d.check("cuModuleLoadData", code); err != nil {
		if i := indexByte(logBuf, 0); i > 0 {
			return fmt.Errorf("%w; JIT log: %s", err, logBuf[:i])
		}
		return err
	}
	for _, name := range kernelNames {
		var f uintptr
		if err := g.d.check("cuModuleGetFunction", g.d.cuModuleGetFunction(&f, g.module, name)); err != nil {
			return fmt.Errorf("%w (kernel %s)", err, name)
		}
		g.funcs[name] = f
	}
	return nil
}

func indexByte(b []byte, c byte) int {
	for i, v := range b {
		if v == c {
			return i
		}
	}
	return -1
}

func (g *cudaGPU) begin() error {
	runtime.LockOSThread()
	if err := g.d.check("cuCtxSetCurrent", g.d.cuCtxSetCurrent(g.ctx)); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	return nil
}

func (g *cudaGPU) end() { runtime.UnlockOSThread() }

func (g *cudaGPU) allocManaged(bytes int) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	if err := g.d.check("cuMemAllocManaged", g.d.cuMemAllocManaged(&p, uint64(bytes), memAttachGlobal)); err != nil {
		return nil, err
	}
	// Zero on the device: the pages then start out there.
	if err := g.d.check("cuMemsetD8", g.d.cuMemsetD8(uint64(uintptr(p)), 0, uint64(bytes))); err != nil {
		g.d.cuMemFree(uint64(uintptr(p)))
		return nil, err
	}
	if err := g.d.check("cuCtxSynchronize", g.d.cuCtxSynchronize()); err != nil {
		return nil, err
	}
	return p, nil
}

func (g *cudaGPU) alloc(bytes int) (uint64, error) {
	var p uint64
	if err := g.d.check("cuMemAlloc", g.d.cuMemAlloc(&p, uint64(bytes))); err != nil {
		return 0, err
	}
	return p, nil
}

func (g *cudaGPU) free(p uint64) error { return g.d.check("cuMemFree", g.d.cuMemFree(p)) }

func (g *cudaGPU) htod(dst uint64, src unsafe.Pointer, bytes int) error {
	return g.d.check("cuMemcpyHtoDAsync", g.d.cuMemcpyHtoDAsync(dst, src, uint64(bytes), g.stream))
}

func (g *cudaGPU) dtoh(dst unsafe.Pointer, src uint64, bytes int) error {
	return g.d.check("cuMemcpyDtoHAsync", g.d.cuMemcpyDtoHAsync(dst, src, uint64(bytes), g.stream))
}

func (g *cudaGPU) launch(name string, grid, block int, slots []uint64) error {
	f, ok := g.funcs[name]
	if !ok {
		return fmt.Errorf("cuda: no kernel %s in the module", name)
	}
	if grid <= 0 {
		return nil
	}
	// cuLaunchKernel reads each argument through a pointer; slots is heap
	// memory (Go's heap does not move) kept alive across the call.
	params := make([]unsafe.Pointer, len(slots)+1)
	for i := range slots {
		params[i] = unsafe.Pointer(&slots[i])
	}
	code := g.d.cuLaunchKernel(f, uint32(grid), 1, 1, uint32(block), 1, 1, 0, g.stream, &params[0], nil)
	runtime.KeepAlive(slots)
	runtime.KeepAlive(params)
	return g.d.check("cuLaunchKernel", code)
}

func (g *cudaGPU) sgemm(transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, b uint64, ldb int, beta float32, c uint64, ldc int) error {
	ta, tb := int32(cublasOpN), int32(cublasOpN)
	if transA {
		ta = cublasOpT
	}
	if transB {
		tb = cublasOpT
	}
	st := g.c.cublasSgemm(g.blas, ta, tb, int32(m), int32(n), int32(k), &alpha, a, int32(lda), b, int32(ldb), &beta, c, int32(ldc))
	return cublasError("cublasSgemm", st)
}

// halfGemm implements gpu: cuBLAS must have GemmEx and its strided
// batched form, and the device must multiply the format (binary16 from
// compute capability 5.3, bfloat16 from 8.0, Ampere).
func (g *cudaGPU) halfGemm(p nn.Precision) bool {
	if g.c.cublasGemmEx == nil || g.c.cublasGemmStridedBatchedEx == nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(g.info.Capability, "%d.%d", &major, &minor); err != nil {
		return false
	}
	switch p {
	case nn.BFloat16:
		return major >= 8
	case nn.Float16:
		return major > 5 || (major == 5 && minor >= 3)
	}
	return false
}

func (g *cudaGPU) gemmEx(p nn.Precision, transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, strideA int64,
	b uint64, ldb int, strideB int64, beta float32, c uint64, ldc int, strideC int64, batch int) error {
	var dt int32
	switch p {
	case nn.BFloat16:
		dt = cudaR16BF
	case nn.Float16:
		dt = cudaR16F
	default:
		return fmt.Errorf("cuda: gemmEx in %v", p)
	}
	ta, tb := int32(cublasOpN), int32(cublasOpN)
	if transA {
		ta = cublasOpT
	}
	if transB {
		tb = cublasOpT
	}
	if batch == 1 {
		st := g.c.cublasGemmEx(g.blas, ta, tb, int32(m), int32(n), int32(k), &alpha, a, dt, int32(lda), b, dt, int32(ldb),
			&beta, c, cudaR32F, int32(ldc), cublasCompute32F, cublasGemmDefault)
		return cublasError("cublasGemmEx", st)
	}
	st := g.c.cublasGemmStridedBatchedEx(g.blas, ta, tb, int32(m), int32(n), int32(k), &alpha, a, dt, int32(lda), strideA,
		b, dt, int32(ldb), strideB, &beta, c, cudaR32F, int32(ldc), strideC, int32(batch), cublasCompute32F, cublasGemmDefault)
	return cublasError("cublasGemmStridedBatchedEx", st)
}

func (g *cudaGPU) prefetch(p uint64, bytes int) error {
	if g.d.cuMemPrefetchAsync == nil {
		return nil
	}
	return g.d.check("cuMemPrefetchAsync", g.d.cuMemPrefetchAsync(p, uint64(bytes), g.dev, g.stream))
}

func (g *cudaGPU) memsetD32(p uint64, v uint32, n int) error {
	return g.d.check("cuMemsetD32Async", g.d.cuMemsetD32Async(p, v, uint64(n), g.stream))
}

func (g *cudaGPU) sync() error {
	return g.d.check("cuStreamSynchronize", g.d.cuStreamSynchronize(g.stream))
}

func (g *cudaGPU) concurrentManaged() bool { return g.concurrent }

func (g *cudaGPU) memInfo() (int64, int64, error) {
	var free, total uint64
	err := g.d.check("cuMemGetInfo", g.d.cuMemGetInfo(&free, &total))
	return int64(free), int64(total), err
}

// close releases what openGPU made, in reverse order, and returns the
// first error.
func (g *cudaGPU) close() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if g.ctx != 0 {
		if err := g.begin(); err == nil {
			if g.blas != 0 {
				keep(cublasError("cublasDestroy", g.c.cublasDestroy(g.blas)))
				g.blas = 0
			}
			if g.module != 0 {
				keep(g.d.check("cuModuleUnload", g.d.cuModuleUnload(g.module)))
				g.module = 0
			}
			if g.stream != 0 {
				keep(g.d.check("cuStreamDestroy", g.d.cuStreamDestroy(g.stream)))
				g.stream = 0
			}
			g.end()
		} else {
			keep(err)
		}
		keep(g.d.check("cuDevicePrimaryCtxRelease", g.d.cuDevicePrimaryCtxRelease(g.dev)))
		g.ctx = 0
	}
	return first
}
