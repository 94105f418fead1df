//go:build amd64 && !purego

package compute

// Implemented in kernel_amd64.s.
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv0() (eax, edx uint32)

//go:noescape
func kernel6x16AVX2(kb int, a, b, c *float32, ldc int)

//go:noescape
func kernel12x32AVX512(kb int, a, b, c *float32, ldc int)

// The edge-tile kernels: the first RxC of kernel12x32AVX512.
//
//go:noescape
func kernel4x16AVX512(kb int, a, b, c *float32, ldc int)

//go:noescape
func kernel4x32AVX512(kb int, a, b, c *float32, ldc int)

//go:noescape
func kernel8x16AVX512(kb int, a, b, c *float32, ldc int)

//go:noescape
func kernel8x32AVX512(kb int, a, b, c *float32, ldc int)

//go:noescape
func kernel12x16AVX512(kb int, a, b, c *float32, ldc int)

//go:noescape
func kernel12x32AVX512Ep(kb int, a, b, c *float32, ldc int, ep *kernEp)

//go:noescape
func storeEdgeAVX512(h int, tile, c *float32, ldc int, ep *kernEp, mlo, mhi uint16)

// hasAVX512F reports whether the CPU and the OS support AVX-512F.
func hasAVX512F() bool {
	if !hasAVX2FMA() {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&0xe6 != 0xe6 { // XMM, YMM, opmask, ZMM state
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<16) != 0
}

// avx512Kernel is the 12x32 AVX-512 micro-kernel with its slice checks.
func avx512Kernel(kb int, a, b, c []float32, ldc int) {
	_ = a[kb*12-1]
	_ = b[kb*32-1]
	_ = c[11*ldc+31]
	kernel12x32AVX512(kb, &a[0], &b[0], &c[0], ldc)
}

//go:noescape
func pack12AVX512(kb8 int, a *float32, lda int, dst *float32, scale *float32)

// pack12AVX512Strip packs a full 12-row strip of row-major A (see packA):
// dst[p*12+r] = scale[r]*a[r*lda+p] for p < kb (kb >= 8).
func pack12AVX512Strip(dst, a []float32, lda, kb int, scale *[16]float32) {
	kb8 := kb / 8
	_ = a[11*lda+kb-1]
	_ = dst[12*kb-1]
	pack12AVX512(kb8, &a[0], lda, &dst[0], &scale[0])
	for p := kb8 * 8; p < kb; p++ {
		d := dst[p*12 : p*12+12]
		for r := range d {
			d[r] = scale[r] * a[r*lda+p]
		}
	}
}

//go:noescape
func packBT32AVX512(kb8 int, b *float32, ldb int, dst *float32)

// packBT32AVX512Strip packs a full 32-column strip of op(B) = B^T (see
// packB): dst[p*32+j] = b[j*ldb+p] for p < kb (kb >= 8).
func packBT32AVX512Strip(dst, b []float32, ldb, kb int) {
	kb8 := kb / 8
	_ = b[31*ldb+kb-1]
	_ = dst[32*kb-1]
	packBT32AVX512(kb8, &b[0], ldb, &dst[0])
	for p := kb8 * 8; p < kb; p++ {
		d := dst[p*32 : p*32+32]
		for j := range d {
			d[j] = b[j*ldb+p]
		}
	}
}

// avx512Part returns a kernel computing at least the first h rows and w
// columns of avx512Kernel's tile (same bits), the smallest of 4, 8 or 12
// rows by 16 or 32 columns, with its slice checks.
func avx512Part(h, w int) func(kb int, a, b, c []float32, ldc int) {
	r := 2
	switch {
	case h <= 4:
		r = 0
	case h <= 8:
		r = 1
	}
	col := 1
	if w <= 16 {
		col = 0
	}
	return avx512Parts[r][col]
}

// avx512Parts[r][c] computes the first 4(r+1) rows and 16(c+1) columns.
var avx512Parts = [3][2]func(kb int, a, b, c []float32, ldc int){
	{partKernel(4, 16, kernel4x16AVX512), partKernel(4, 32, kernel4x32AVX512)},
	{partKernel(8, 16, kernel8x16AVX512), partKernel(8, 32, kernel8x32AVX512)},
	{partKernel(12, 16, kernel12x16AVX512), avx512Kernel},
}

// partKernel wraps an r x c edge kernel with its slice checks.
func partKernel(r, c int, k func(kb int, a, b, c *float32, ldc int)) func(kb int, a, b, c []float32, ldc int) {
	return func(kb int, a, b, cs []float32, ldc int) {
		_ = a[kb*12-1]
		_ = b[kb*32-1]
		_ = cs[(r-1)*ldc+c-1]
		k(kb, &a[0], &b[0], &cs[0], ldc)
	}
}

// avx512KernelEp is the 12x32 AVX-512 kernel with the fused store, with
// its slice checks (the caller checked ep's shift and residual).
func avx512KernelEp(kb int, a, b, c []float32, ldc int, ep *kernEp) {
	_ = a[kb*12-1]
	_ = b[kb*32-1]
	_ = c[11*ldc+31]
	kernel12x32AVX512Ep(kb, &a[0], &b[0], &c[0], ldc, ep)
}

// avx512StoreEdge is storeEdgeAVX512 with its slice checks: the h x w
// edge tile in tile (rows 32 apart) into c with the fused epilogue.
func avx512StoreEdge(h, w int, tile, c []float32, ldc int, ep *kernEp) {
	_ = tile[(h-1)*32+w-1]
	_ = c[(h-1)*ldc+w-1]
	lo := uint16(1<<min(w, 16) - 1)
	hi := uint16(1<<max(w-16, 0) - 1)
	storeEdgeAVX512(h, &tile[0], &c[0], ldc, ep, lo, hi)
}

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

// avx2Kernel6x16 and avx512Kernel12x32 describe the assembly kernels.
var (
	avx2Kernel6x16    = &microKernel{name: "avx2+fma assembly kernel 6x16", mr: 6, nr: 16, fn: avx2Kernel}
	avx512Kernel12x32 = &microKernel{name: "avx512 assembly kernel 12x32", mr: 12, nr: 32, fn: avx512Kernel, fnEp: avx512KernelEp, part: avx512Part, storeEdge: avx512StoreEdge}
)

func init() {
	switch {
	case hasAVX512F():
		packStrip12 = pack12AVX512Strip
		packStripBT32 = packBT32AVX512Strip
		asmKernel = avx512Kernel12x32
		asmKernels = []*microKernel{avx2Kernel6x16, avx512Kernel12x32}
	case hasAVX2FMA():
		asmKernel = avx2Kernel6x16
		asmKernels = []*microKernel{avx2Kernel6x16}
	}
}
