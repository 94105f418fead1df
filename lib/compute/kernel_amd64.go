//go:build amd64 && !purego

package compute

// Implemented in kernel_amd64.s.
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv0() (eax, edx uint32)

//go:noescape
func kernel6x16AVX2(kb int, a, b, c *float32, ldc int)

// hasAVX2FMA reports whether the CPU and the OS support AVX2 and FMA3.
func hasAVX2FMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if ecx1&fma == 0 || ecx1&osxsave == 0 || ecx1&avx == 0 {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 { // XMM and YMM state enabled
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}

// avx2Kernel is the 6x16 AVX2/FMA micro-kernel with its slice checks.
func avx2Kernel(kb int, a, b, c []float32, ldc int) {
	_ = a[kb*6-1]
	_ = b[kb*16-1]
	_ = c[5*ldc+15]
	kernel6x16AVX2(kb, &a[0], &b[0], &c[0], ldc)
}

func init() {
	if hasAVX2FMA() {
		asmKernel = &microKernel{name: "avx2+fma assembly kernel 6x16", mr: 6, nr: 16, fn: avx2Kernel}
	}
}
