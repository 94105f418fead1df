package cuda

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"unsafe"
)

// These tests use the machine's real libraries: with the NVIDIA driver
// installed but no GPU (this project's CI) they check the loader, symbol
// binding, error naming and the "no device" path; without the driver the
// "missing library" path; with a GPU they skip (backend_gpu_test.go runs).

func TestProbe(t *testing.T) {
	in, err := Probe()
	switch {
	case errors.Is(err, ErrNoDriver):
		if !strings.Contains(err.Error(), "libcuda.so.1") {
			t.Errorf("no-driver error does not name the library: %v", err)
		}
		t.Skipf("no NVIDIA driver here: %v", err)
	case errors.Is(err, ErrNoDevice):
		// The driver loaded and answered: its version and the error's
		// names come from it.
		if in.Driver == "" || !regexp.MustCompile(`^\d+\.\d+$`).MatchString(in.Driver) {
			t.Errorf("driver version %q, want like 12.2", in.Driver)
		}
		if !strings.Contains(err.Error(), "CUDA_ERROR_NO_DEVICE") {
			t.Errorf("error %q does not name CUDA_ERROR_NO_DEVICE", err)
		}
		if len(in.Devices) != 0 {
			t.Errorf("devices listed despite the error: %v", in.Devices)
		}
		if !strings.Contains(in.String(), "no device") {
			t.Errorf("Info.String() = %q", in.String())
		}
		t.Logf("Probe: %v (%v)", in, err)
	case err != nil:
		t.Fatalf("Probe: %v", err)
	default:
		if len(in.Devices) == 0 || in.CUBLAS == "" {
			t.Fatalf("Probe succeeded with %+v", in)
		}
		t.Logf("Probe: %v", in)
	}
}

func TestCUBLASVersion(t *testing.T) {
	c, err := loadCUBLAS()
	if errors.Is(err, ErrNoCUBLAS) {
		if !strings.Contains(err.Error(), EnvLibs) {
			t.Errorf("error does not say how to point at cuBLAS: %v", err)
		}
		t.Skipf("no cuBLAS here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(c.version) {
		t.Errorf("cuBLAS version %q", c.version)
	}
	t.Logf("cuBLAS %s from %s", c.version, c.path)
}

func TestNewBackendWithoutGPU(t *testing.T) {
	b, err := NewBackend(0)
	if err == nil {
		b.Close()
		t.Skip("a GPU is present: backend_gpu_test.go covers it")
	}
	if !errors.Is(err, ErrNoDriver) && !errors.Is(err, ErrNoDevice) && !errors.Is(err, ErrNoCUBLAS) {
		t.Fatalf("NewBackend(0): %v, want ErrNoDriver, ErrNoDevice or ErrNoCUBLAS", err)
	}
	if !strings.HasPrefix(err.Error(), "cuda: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
}

func TestMissingLibrary(t *testing.T) {
	_, _, err := dlopenFirst([]string{"/nonexistent/libcuda.so.1", "libdetlab-no-such.so.1"})
	if err == nil {
		t.Fatal("dlopen of missing libraries succeeded")
	}
	for _, want := range []string{"/nonexistent/libcuda.so.1", "libdetlab-no-such.so.1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestErrorNames(t *testing.T) {
	d, err := loadDriver()
	if err != nil {
		t.Skipf("no driver: %v", err)
	}
	for _, tc := range []struct {
		code int32
		want string
	}{
		{2, "cuda: cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"},
		{100, "cuda: cuMemAlloc: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)"},
		{0, ""},
	} {
		err := d.check("cuMemAlloc", tc.code)
		if tc.want == "" {
			if err != nil {
				t.Errorf("code 0: %v", err)
			}
			continue
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("code %d: %v, want %s", tc.code, err, tc.want)
		}
	}
	if err := d.check("cuInit", 100); !errors.Is(err, ErrNoDevice) {
		t.Errorf("code 100 is not ErrNoDevice")
	}
	if err := cublasError("cublasSgemm", 13); err == nil || err.Error() != "cuda: cublasSgemm: CUBLAS_STATUS_EXECUTION_FAILED" {
		t.Errorf("cuBLAS status 13: %v", err)
	}
	if err := cublasError("cublasSgemm", 100); errors.Is(err, ErrNoDevice) {
		t.Errorf("a cuBLAS status of 100 reads as ErrNoDevice")
	}
}

func TestCandidates(t *testing.T) {
	env := map[string]string{EnvLibs: " /opt/a: :/opt/b "}
	globs := map[string][]string{
		"/usr/local/cuda-*/lib64": {"/usr/local/cuda-11.8/lib64", "/usr/local/cuda-12.4/lib64"},
		"/usr/local/nvidia/lib64": {"/usr/local/nvidia/lib64"},
	}
	got := candidates([]string{"libcublas.so.13", "libcublas.so.11"}, func(k string) string { return env[k] },
		func(p string) ([]string, error) { return globs[p], nil })
	want := []string{
		"/opt/a/libcublas.so.13", "/opt/b/libcublas.so.13", "/opt/a/libcublas.so.11", "/opt/b/libcublas.so.11",
		"libcublas.so.13", "libcublas.so.11",
		"/usr/local/cuda-12.4/lib64/libcublas.so.13", "/usr/local/cuda-11.8/lib64/libcublas.so.13", "/usr/local/nvidia/lib64/libcublas.so.13",
		"/usr/local/cuda-12.4/lib64/libcublas.so.11", "/usr/local/cuda-11.8/lib64/libcublas.so.11", "/usr/local/nvidia/lib64/libcublas.so.11",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("candidates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, tc := range []struct{ in, want string }{
		{"/x/libcublas.so.13", "/x/libcublasLt.so.13"},
		{"libcublas.so.11", "libcublasLt.so.11"},
		{"/x/libcuda.so.1", ""},
	} {
		if got := companion(tc.in); got != tc.want {
			t.Errorf("companion(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEnvLibsDirectoryWins(t *testing.T) {
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libcublas.so.11"); err != nil {
		t.Skip("needs Debian's libcublas11")
	}
	t.Setenv(EnvLibs, "/usr/lib/x86_64-linux-gnu")
	c := cublasCandidates()
	if len(c) == 0 || c[0] != "/usr/lib/x86_64-linux-gnu/libcublas.so.13" {
		t.Fatalf("first candidate %v, want the $%s directory first", c[:1], EnvLibs)
	}
}

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in      string
		kind    string
		ordinal int
		err     string
	}{
		{"", "cpu", 0, ""},
		{"cpu", "cpu", 0, ""},
		{" CPU ", "cpu", 0, ""},
		{"cuda", "cuda", 0, ""},
		{"cuda:0", "cuda", 0, ""},
		{"cuda:3", "cuda", 3, ""},
		{"CUDA:1", "cuda", 1, ""},
		{"cuda:", "", 0, "non-negative integer"},
		{"cuda:-1", "", 0, "non-negative integer"},
		{"cuda:x", "", 0, "non-negative integer"},
		{"gpu", "", 0, `want "cpu", "cuda" or "cuda:N"`},
		{"mps", "", 0, `want "cpu", "cuda" or "cuda:N"`},
	} {
		kind, ord, err := ParseDevice(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "cuda: ") {
				t.Errorf("ParseDevice(%q): err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || kind != tc.kind || ord != tc.ordinal {
			t.Errorf("ParseDevice(%q) = %q, %d, %v; want %q, %d", tc.in, kind, ord, err, tc.kind, tc.ordinal)
		}
	}
}

func TestInfoString(t *testing.T) {
	in := Info{Driver: "13.0", CUBLAS: "13.1.0", Devices: []DeviceInfo{{Ordinal: 0, Name: "NVIDIA H200", Capability: "9.0", TotalMemory: 150 << 30}}}
	if got, want := in.String(), "driver 13.0, cuBLAS 13.1.0, 1 device: cuda:0 NVIDIA H200 (sm_90, 150.0 GiB)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Info{}).String(); got != "driver none, cuBLAS none, no device" {
		t.Errorf("empty Info: %q", got)
	}
	if got := versionString(12020); got != "12.2" {
		t.Errorf("versionString(12020) = %q", got)
	}
	if got := versionString(13000); got != "13.0" {
		t.Errorf("versionString(13000) = %q", got)
	}
}

// TestBindingsCallable calls every bound entry point on a machine whose
// driver has no device, with NULL handles (the driver dereferences
// non-NULL ones): each must return an error code rather than crash, which
// exercises purego's
// argument passing for every signature, stack arguments included
// (cuLaunchKernel has 11, cublasSgemm_v2 14).
func TestBindingsCallable(t *testing.T) {
	d, err := loadDriver()
	if err != nil {
		t.Skipf("no driver: %v", err)
	}
	if _, err := initDriver(); err == nil {
		t.Skip("the driver has a device: the GPU tests exercise the bindings")
	}
	var (
		u, free, total uint64
		h              uintptr
		i              int32
		mp             unsafe.Pointer
		buf            = make([]byte, 64)
		opts           = []int32{jitErrorLogBuffer}
		vals           = []uintptr{0}
	)
	calls := []struct {
		name string
		code int32
	}{
		{"cuDeviceGetCount", d.cuDeviceGetCount(&i)},
		{"cuDeviceGet", d.cuDeviceGet(&i, 0)},
		{"cuDeviceGetName", d.cuDeviceGetName(&buf[0], int32(len(buf)), 0)},
		{"cuDeviceGetAttribute", d.cuDeviceGetAttribute(&i, attrCCMajor, 0)},
		{"cuDeviceTotalMem", d.cuDeviceTotalMem(&u, 0)},
		{"cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(&h, 0)},
		{"cuDevicePrimaryCtxRelease", d.cuDevicePrimaryCtxRelease(0)},
		{"cuCtxSetCurrent", d.cuCtxSetCurrent(0)},
		{"cuCtxSynchronize", d.cuCtxSynchronize()},
		{"cuMemAllocManaged", d.cuMemAllocManaged(&mp, 16, memAttachGlobal)},
		{"cuMemAlloc", d.cuMemAlloc(&u, 16)},
		{"cuMemFree", d.cuMemFree(16)},
		{"cuMemcpyHtoD", d.cuMemcpyHtoD(16, unsafe.Pointer(&buf[0]), 4)},
		{"cuMemcpyDtoH", d.cuMemcpyDtoH(unsafe.Pointer(&buf[0]), 16, 4)},
		{"cuMemcpyHtoDAsync", d.cuMemcpyHtoDAsync(16, unsafe.Pointer(&buf[0]), 4, 0)},
		{"cuMemcpyDtoHAsync", d.cuMemcpyDtoHAsync(unsafe.Pointer(&buf[0]), 16, 4, 0)},
		{"cuMemsetD8", d.cuMemsetD8(16, 0, 4)},
		{"cuMemsetD32Async", d.cuMemsetD32Async(16, 0, 4, 0)},
		{"cuMemGetInfo", d.cuMemGetInfo(&free, &total)},
		{"cuModuleLoadDataEx", d.cuModuleLoadDataEx(&h, &buf[0], 1, &opts[0], &vals[0])},
		{"cuModuleUnload", d.cuModuleUnload(0)},
		{"cuModuleGetFunction", d.cuModuleGetFunction(&h, 0, "detlab_im2col")},
		{"cuLaunchKernel", d.cuLaunchKernel(0, 1, 1, 1, 256, 1, 1, 0, 0, nil, nil)},
		{"cuStreamCreate", d.cuStreamCreate(&h, 0)},
		{"cuStreamDestroy", d.cuStreamDestroy(0)},
		{"cuStreamSynchronize", d.cuStreamSynchronize(0)},
	}
	if d.cuMemPrefetchAsync != nil {
		calls = append(calls, struct {
			name string
			code int32
		}{"cuMemPrefetchAsync", d.cuMemPrefetchAsync(16, 4, 0, 0)})
	}
	for _, c := range calls {
		err := d.check(c.name, c.code)
		if err == nil || !strings.Contains(err.Error(), "CUDA_ERROR_") {
			t.Errorf("%s without a device: %v, want a named CUDA error", c.name, err)
		}
	}
	c, err := loadCUBLAS()
	if err != nil {
		t.Skipf("no cuBLAS: %v", err)
	}
	var alpha, beta float32 = 1, 0
	for _, s := range []struct {
		name   string
		status int32
	}{
		{"cublasCreate", c.cublasCreate(&h)},
		{"cublasSetStream", c.cublasSetStream(0, 0)},
		{"cublasSetMathMode", c.cublasSetMathMode(0, cublasDefaultMath)},
		{"cublasSgemm", c.cublasSgemm(0, cublasOpN, cublasOpT, 2, 2, 2, &alpha, 16, 2, 16, 2, &beta, 16, 2)},
		{"cublasDestroy", c.cublasDestroy(0)},
	} {
		if err := cublasError(s.name, s.status); err == nil || !strings.Contains(err.Error(), "CUBLAS_STATUS_") {
			t.Errorf("%s without a device: %v, want a named cuBLAS status", s.name, err)
		}
	}
}
