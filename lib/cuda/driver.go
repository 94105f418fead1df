package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"
)

// symbol is one function to bind from a shared library.
type symbol struct {
	name     string
	fn       any // pointer to a func variable
	optional bool
}

// Device attributes (CUdevice_attribute) the package reads.
const (
	attrCCMajor        = 75
	attrCCMinor        = 76
	attrManagedMemory  = 83
	attrPageableAccess = 88
	// attrConcurrentManaged: the host may touch managed memory while
	// kernels run. Without it any such access faults, so the backend
	// synchronizes after every operation.
	attrConcurrentManaged = 89
)

// JIT options (CUjit_option) for cuModuleLoadDataEx.
const (
	jitErrorLogBuffer     = 5
	jitErrorLogBufferSize = 6
)

const memAttachGlobal = 1 // CU_MEM_ATTACH_GLOBAL

// driverLib holds libcuda.so.1's entry points (CUresult is int32, CUdevice
// int32, CUdeviceptr uint64, handles uintptr).
type driverLib struct {
	path string

	cuInit                    func(flags uint32) int32
	cuDriverGetVersion        func(v *int32) int32
	cuDeviceGetCount          func(n *int32) int32
	cuDeviceGet               func(dev *int32, ordinal int32) int32
	cuDeviceGetName           func(name *byte, n int32, dev int32) int32
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) int32
	cuDeviceTotalMem          func(bytes *uint64, dev int32) int32
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease func(dev int32) int32
	cuCtxSetCurrent           func(ctx uintptr) int32
	cuCtxSynchronize          func() int32
	cuMemAllocManaged         func(p *unsafe.Pointer, bytes uint64, flags uint32) int32
	cuMemAlloc                func(p *uint64, bytes uint64) int32
	cuMemFree                 func(p uint64) int32
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, bytes uint64) int32
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, bytes uint64) int32
	cuMemcpyHtoDAsync         func(dst uint64, src unsafe.Pointer, bytes uint64, stream uintptr) int32
	cuMemcpyDtoHAsync         func(dst unsafe.Pointer, src uint64, bytes uint64, stream uintptr) int32
	cuMemsetD8                func(dst uint64, v uint8, n uint64) int32
	cuMemsetD32Async          func(dst uint64, v uint32, n uint64, stream uintptr) int32
	cuMemGetInfo              func(free, total *uint64) int32
	cuModuleLoadDataEx        func(mod *uintptr, image *byte, n uint32, opts *int32, vals *uintptr) int32
	cuModuleUnload            func(mod uintptr) int32
	cuModuleGetFunction       func(f *uintptr, mod uintptr, name string) int32
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params *unsafe.Pointer, extra *unsafe.Pointer) int32
	cuStreamCreate            func(s *uintptr, flags uint32) int32
	cuStreamDestroy           func(s uintptr) int32
	cuStreamSynchronize       func(s uintptr) int32
	cuGetErrorName            func(code int32, s **byte) int32
	cuGetErrorString          func(code int32, s **byte) int32
	cuMemPrefetchAsync        func(p uint64, bytes uint64, dev int32, stream uintptr) int32 // optional
}

func (d *driverLib) symbols() []symbol {
	return []symbol{
		{name: "cuInit", fn: &d.cuInit},
		{name: "cuDriverGetVersion", fn: &d.cuDriverGetVersion},
		{name: "cuDeviceGetCount", fn: &d.cuDeviceGetCount},
		{name: "cuDeviceGet", fn: &d.cuDeviceGet},
		{name: "cuDeviceGetName", fn: &d.cuDeviceGetName},
		{name: "cuDeviceGetAttribute", fn: &d.cuDeviceGetAttribute},
		{name: "cuDeviceTotalMem_v2", fn: &d.cuDeviceTotalMem},
		{name: "cuDevicePrimaryCtxRetain", fn: &d.cuDevicePrimaryCtxRetain},
		{name: "cuDevicePrimaryCtxRelease_v2", fn: &d.cuDevicePrimaryCtxRelease},
		{name: "cuCtxSetCurrent", fn: &d.cuCtxSetCurrent},
		{name: "cuCtxSynchronize", fn: &d.cuCtxSynchronize},
		{name: "cuMemAllocManaged", fn: &d.cuMemAllocManaged},
		{name: "cuMemAlloc_v2", fn: &d.cuMemAlloc},
		{name: "cuMemFree_v2", fn: &d.cuMemFree},
		{name: "cuMemcpyHtoD_v2", fn: &d.cuMemcpyHtoD},
		{name: "cuMemcpyDtoH_v2", fn: &d.cuMemcpyDtoH},
		{name: "cuMemcpyHtoDAsync_v2", fn: &d.cuMemcpyHtoDAsync},
		{name: "cuMemcpyDtoHAsync_v2", fn: &d.cuMemcpyDtoHAsync},
		{name: "cuMemsetD8_v2", fn: &d.cuMemsetD8},
		{name: "cuMemsetD32Async", fn: &d.cuMemsetD32Async},
		{name: "cuMemGetInfo_v2", fn: &d.cuMemGetInfo},
		{name: "cuModuleLoadDataEx", fn: &d.cuModuleLoadDataEx},
		{name: "cuModuleUnload", fn: &d.cuModuleUnload},
		{name: "cuModuleGetFunction", fn: &d.cuModuleGetFunction},
		{name: "cuLaunchKernel", fn: &d.cuLaunchKernel},
		{name: "cuStreamCreate", fn: &d.cuStreamCreate},
		{name: "cuStreamDestroy_v2", fn: &d.cuStreamDestroy},
		{name: "cuStreamSynchronize", fn: &d.cuStreamSynchronize},
		{name: "cuGetErrorName", fn: &d.cuGetErrorName},
		{name: "cuGetErrorString", fn: &d.cuGetErrorString},
		{name: "cuMemPrefetchAsync", fn: &d.cuMemPrefetchAsync, optional: true},
	}
}

var (
	driverOnce   sync.Once
	driverCached *driverLib
	driverErr    error
	// initErr is cuInit's result, kept: cuInit is called once.
	initOnce sync.Once
	initErr  error
)

// driverCandidates lists where libcuda.so.1 is looked for.
func driverCandidates() []string {
	return candidates([]string{"libcuda.so.1"}, os.Getenv, filepath.Glob)
}

// loadDriver opens and binds libcuda.so.1 once.
func loadDriver() (*driverLib, error) {
	driverOnce.Do(func() {
		h, path, err := dlopenFirst(driverCandidates())
		if err != nil {
			driverErr = fmt.Errorf("%w: %v", ErrNoDriver, err)
			return
		}
		d := &driverLib{path: path}
		if err := bind(h, d.symbols()); err != nil {
			driverErr = fmt.Errorf("%w: %s: %v", ErrNoDriver, path, err)
			return
		}
		driverCached = d
	})
	return driverCached, driverErr
}

// initDriver loads the driver and runs cuInit(0) once.
func initDriver() (*driverLib, error) {
	d, err := loadDriver()
	if err != nil {
		return nil, err
	}
	initOnce.Do(func() { initErr = d.check("cuInit", d.cuInit(0)) })
	if initErr != nil {
		return nil, initErr
	}
	return d, nil
}

// check turns a CUresult into nil or an *Error with the driver's name and
// description of the code.
func (d *driverLib) check(op string, code int32) error {
	if code == cudaSuccess {
		return nil
	}
	e := &Error{Op: op, Code: int(code), Name: fmt.Sprintf("CUresult(%d)", code)}
	var s *byte
	if d.cuGetErrorName != nil && d.cuGetErrorName(code, &s) == cudaSuccess && s != nil {
		e.Name = goString(s)
	}
	s = nil
	if d.cuGetErrorString != nil && d.cuGetErrorString(code, &s) == cudaSuccess && s != nil {
		e.Desc = goString(s)
	}
	return e
}

// goString copies a NUL-terminated C string.
func goString(p *byte) string {
	var b strings.Builder
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b.WriteByte(*(*byte)(q))
	}
	return b.String()
}

// versionString turns cuDriverGetVersion's 12020 into "12.2".
func versionString(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }
