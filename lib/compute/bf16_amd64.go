//go:build amd64 && !purego

package compute

// Implemented in bf16_amd64.s.
//
//go:noescape
func bf16Kernel12x32(kq int, a, b *uint32, c *float32, ldc int, alpha float32, rs, qs int)

//go:noescape
func bf16PackColPairs12(dst *uint32, src *float32, ld int, kq int)

//go:noescape
func bf16PackRowPairs32(dst *uint32, src *float32, ld int, kq int)

//go:noescape
func bf16CvtPairs(dst *uint32, src *float32, nq int)

//go:noescape
func bf16RoundSlice(dst, src *float32, n int)

// hasAVX512BF16 reports whether the CPU and the OS support AVX-512F and
// AVX512_BF16 (CPUID leaf 7 sub-leaf 1, EAX bit 5).
func hasAVX512BF16() bool {
	if !hasAVX512F() {
		return false
	}
	maxSub, _, _, _ := cpuid(7, 0)
	if maxSub < 1 {
		return false
	}
	eax71, _, _, _ := cpuid(7, 1)
	return eax71&(1<<5) != 0
}

// bf16AsmKernel is the 12x32 AVX512_BF16 micro-kernel with its slice checks.
func bf16AsmKernel(kq int, a, b []uint32, c []float32, ldc int, alpha float32, rs, qs int) {
	_ = a[11*rs+(kq-1)*qs]
	_ = b[kq*32-1]
	_ = c[11*ldc+31]
	bf16Kernel12x32(kq, &a[0], &b[0], &c[0], ldc, alpha, rs, qs)
}

// bf16AsmColPairs12 is bf16PackColPairs12 with its slice checks.
func bf16AsmColPairs12(dst []uint32, src []float32, ld, kq int) {
	_ = dst[kq*12-1]
	_ = src[(2*kq-1)*ld+11]
	bf16PackColPairs12(&dst[0], &src[0], ld, kq)
}

// bf16AsmRowPairs32 is bf16PackRowPairs32 with its slice checks.
func bf16AsmRowPairs32(dst []uint32, src []float32, ld, kq int) {
	_ = dst[kq*32-1]
	_ = src[(2*kq-1)*ld+31]
	bf16PackRowPairs32(&dst[0], &src[0], ld, kq)
}

// bf16AsmCvtPairs is bf16CvtPairs with its slice checks.
func bf16AsmCvtPairs(dst []uint32, src []float32, nq int) {
	_ = dst[nq-1]
	_ = src[2*nq-1]
	bf16CvtPairs(&dst[0], &src[0], nq)
}

// bf16AsmRound is bf16RoundSlice with its slice checks.
func bf16AsmRound(dst, src []float32, n int) {
	_ = dst[n-1]
	_ = src[n-1]
	bf16RoundSlice(&dst[0], &src[0], n)
}

func init() {
	if hasAVX512F() {
		bf16RoundN = bf16AsmRound // AVX-512F integer arithmetic only
	}
	if hasAVX512BF16() {
		bf16Native = &bf16MicroKernel{name: "avx512_bf16 assembly kernel 12x32 (VDPBF16PS)", mr: 12, nr: 32, fn: bf16AsmKernel}
		bf16RowPairs32 = bf16AsmRowPairs32
		bf16CvtPairsN = bf16AsmCvtPairs
		bf16ColPairs12 = bf16AsmColPairs12
	}
}
