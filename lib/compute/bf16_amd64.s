//go:build amd64 && !purego

#include "textflag.h"

// AVX512_BF16 instructions are not in Go's assembler tables (go1.26): they
// are written as bytes, each macro named after the instruction it encodes
// (Intel operand order: destination first), bytes taken from GNU as.

// vdpbf16ps zmm4, zmm2, zmm0: zmm4.fp32[j] += dot of the bf16 pairs zmm2[j], zmm0[j]
#define VDPBF16PS_Z4_Z2_Z0 BYTE $0x62; BYTE $0xf2; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xe0
// vdpbf16ps zmm5, zmm2, zmm1: zmm5.fp32[j] += dot of the bf16 pairs zmm2[j], zmm1[j]
#define VDPBF16PS_Z5_Z2_Z1 BYTE $0x62; BYTE $0xf2; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xe9
// vdpbf16ps zmm6, zmm3, zmm0: zmm6.fp32[j] += dot of the bf16 pairs zmm3[j], zmm0[j]
#define VDPBF16PS_Z6_Z3_Z0 BYTE $0x62; BYTE $0xf2; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xf0
// vdpbf16ps zmm7, zmm3, zmm1: zmm7.fp32[j] += dot of the bf16 pairs zmm3[j], zmm1[j]
#define VDPBF16PS_Z7_Z3_Z1 BYTE $0x62; BYTE $0xf2; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xf9
// vdpbf16ps zmm8, zmm2, zmm0: zmm8.fp32[j] += dot of the bf16 pairs zmm2[j], zmm0[j]
#define VDPBF16PS_Z8_Z2_Z0 BYTE $0x62; BYTE $0x72; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xc0
// vdpbf16ps zmm9, zmm2, zmm1: zmm9.fp32[j] += dot of the bf16 pairs zmm2[j], zmm1[j]
#define VDPBF16PS_Z9_Z2_Z1 BYTE $0x62; BYTE $0x72; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xc9
// vdpbf16ps zmm10, zmm3, zmm0: zmm10.fp32[j] += dot of the bf16 pairs zmm3[j], zmm0[j]
#define VDPBF16PS_Z10_Z3_Z0 BYTE $0x62; BYTE $0x72; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xd0
// vdpbf16ps zmm11, zmm3, zmm1: zmm11.fp32[j] += dot of the bf16 pairs zmm3[j], zmm1[j]
#define VDPBF16PS_Z11_Z3_Z1 BYTE $0x62; BYTE $0x72; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xd9
// vdpbf16ps zmm12, zmm2, zmm0: zmm12.fp32[j] += dot of the bf16 pairs zmm2[j], zmm0[j]
#define VDPBF16PS_Z12_Z2_Z0 BYTE $0x62; BYTE $0x72; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xe0
// vdpbf16ps zmm13, zmm2, zmm1: zmm13.fp32[j] += dot of the bf16 pairs zmm2[j], zmm1[j]
#define VDPBF16PS_Z13_Z2_Z1 BYTE $0x62; BYTE $0x72; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xe9
// vdpbf16ps zmm14, zmm3, zmm0: zmm14.fp32[j] += dot of the bf16 pairs zmm3[j], zmm0[j]
#define VDPBF16PS_Z14_Z3_Z0 BYTE $0x62; BYTE $0x72; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xf0
// vdpbf16ps zmm15, zmm3, zmm1: zmm15.fp32[j] += dot of the bf16 pairs zmm3[j], zmm1[j]
#define VDPBF16PS_Z15_Z3_Z1 BYTE $0x62; BYTE $0x72; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xf9
// vdpbf16ps zmm16, zmm2, zmm0: zmm16.fp32[j] += dot of the bf16 pairs zmm2[j], zmm0[j]
#define VDPBF16PS_Z16_Z2_Z0 BYTE $0x62; BYTE $0xe2; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xc0
// vdpbf16ps zmm17, zmm2, zmm1: zmm17.fp32[j] += dot of the bf16 pairs zmm2[j], zmm1[j]
#define VDPBF16PS_Z17_Z2_Z1 BYTE $0x62; BYTE $0xe2; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xc9
// vdpbf16ps zmm18, zmm3, zmm0: zmm18.fp32[j] += dot of the bf16 pairs zmm3[j], zmm0[j]
#define VDPBF16PS_Z18_Z3_Z0 BYTE $0x62; BYTE $0xe2; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xd0
// vdpbf16ps zmm19, zmm3, zmm1: zmm19.fp32[j] += dot of the bf16 pairs zmm3[j], zmm1[j]
#define VDPBF16PS_Z19_Z3_Z1 BYTE $0x62; BYTE $0xe2; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xd9
// vdpbf16ps zmm20, zmm2, zmm0: zmm20.fp32[j] += dot of the bf16 pairs zmm2[j], zmm0[j]
#define VDPBF16PS_Z20_Z2_Z0 BYTE $0x62; BYTE $0xe2; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xe0
// vdpbf16ps zmm21, zmm2, zmm1: zmm21.fp32[j] += dot of the bf16 pairs zmm2[j], zmm1[j]
#define VDPBF16PS_Z21_Z2_Z1 BYTE $0x62; BYTE $0xe2; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xe9
// vdpbf16ps zmm22, zmm3, zmm0: zmm22.fp32[j] += dot of the bf16 pairs zmm3[j], zmm0[j]
#define VDPBF16PS_Z22_Z3_Z0 BYTE $0x62; BYTE $0xe2; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xf0
// vdpbf16ps zmm23, zmm3, zmm1: zmm23.fp32[j] += dot of the bf16 pairs zmm3[j], zmm1[j]
#define VDPBF16PS_Z23_Z3_Z1 BYTE $0x62; BYTE $0xe2; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xf9
// vdpbf16ps zmm24, zmm2, zmm0: zmm24.fp32[j] += dot of the bf16 pairs zmm2[j], zmm0[j]
#define VDPBF16PS_Z24_Z2_Z0 BYTE $0x62; BYTE $0x62; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xc0
// vdpbf16ps zmm25, zmm2, zmm1: zmm25.fp32[j] += dot of the bf16 pairs zmm2[j], zmm1[j]
#define VDPBF16PS_Z25_Z2_Z1 BYTE $0x62; BYTE $0x62; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xc9
// vdpbf16ps zmm26, zmm3, zmm0: zmm26.fp32[j] += dot of the bf16 pairs zmm3[j], zmm0[j]
#define VDPBF16PS_Z26_Z3_Z0 BYTE $0x62; BYTE $0x62; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xd0
// vdpbf16ps zmm27, zmm3, zmm1: zmm27.fp32[j] += dot of the bf16 pairs zmm3[j], zmm1[j]
#define VDPBF16PS_Z27_Z3_Z1 BYTE $0x62; BYTE $0x62; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xd9

// func bf16Kernel12x32(kq int, a, b *uint32, c *float32, ldc int, alpha float32, rs, qs int)
//
// c[i*ldc+j] = alpha*acc[i][j] + c[i*ldc+j] for i < 12, j < 32, where
// acc[i][j] = sum over q < kq of the bf16 pair a[i*rs+q*qs] times the bf16
// pair b[q*32+j] (each uint32 holds two bf16 values, consecutive along k,
// the lower k in the low half). kq >= 1. 24 ZMM accumulators (12 rows x 2
// vectors of 16 float32), VDPBF16PS: 32 multiply-adds per instruction. A is
// read in place in either packed layout (rows of kq pairs: rs = kq, qs = 1;
// or the 12 rows' pairs of each q together: rs = 1, qs = 12): rows 0-5 from
// SI, 6-11 from R11 = SI + 6*rs, at offsets 0, R9, 2*R9, R10 = 3*R9, 4*R9,
// R12 = 5*R9 (R9 = 4*rs bytes), both advancing R13 = 4*qs bytes per pair.
TEXT ·bf16Kernel12x32(SB), NOSPLIT, $0-64
	MOVQ kq+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8
	MOVQ rs+48(FP), R9
	SHLQ $2, R9
	MOVQ qs+56(FP), R13
	SHLQ $2, R13
	LEAQ (R9)(R9*2), R10
	LEAQ (R9)(R9*4), R12
	LEAQ (SI)(R9*2), R11
	LEAQ (R11)(R9*4), R11

	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27

loopbf16:
	VMOVDQU32 (DI), Z0
	VMOVDQU32 64(DI), Z1
	VPBROADCASTD (SI), Z2
	VDPBF16PS_Z4_Z2_Z0
	VDPBF16PS_Z5_Z2_Z1
	VPBROADCASTD (SI)(R9*1), Z3
	VDPBF16PS_Z6_Z3_Z0
	VDPBF16PS_Z7_Z3_Z1
	VPBROADCASTD (SI)(R9*2), Z2
	VDPBF16PS_Z8_Z2_Z0
	VDPBF16PS_Z9_Z2_Z1
	VPBROADCASTD (SI)(R10*1), Z3
	VDPBF16PS_Z10_Z3_Z0
	VDPBF16PS_Z11_Z3_Z1
	VPBROADCASTD (SI)(R9*4), Z2
	VDPBF16PS_Z12_Z2_Z0
	VDPBF16PS_Z13_Z2_Z1
	VPBROADCASTD (SI)(R12*1), Z3
	VDPBF16PS_Z14_Z3_Z0
	VDPBF16PS_Z15_Z3_Z1
	VPBROADCASTD (R11), Z2
	VDPBF16PS_Z16_Z2_Z0
	VDPBF16PS_Z17_Z2_Z1
	VPBROADCASTD (R11)(R9*1), Z3
	VDPBF16PS_Z18_Z3_Z0
	VDPBF16PS_Z19_Z3_Z1
	VPBROADCASTD (R11)(R9*2), Z2
	VDPBF16PS_Z20_Z2_Z0
	VDPBF16PS_Z21_Z2_Z1
	VPBROADCASTD (R11)(R10*1), Z3
	VDPBF16PS_Z22_Z3_Z0
	VDPBF16PS_Z23_Z3_Z1
	VPBROADCASTD (R11)(R9*4), Z2
	VDPBF16PS_Z24_Z2_Z0
	VDPBF16PS_Z25_Z2_Z1
	VPBROADCASTD (R11)(R12*1), Z3
	VDPBF16PS_Z26_Z3_Z0
	VDPBF16PS_Z27_Z3_Z1
	ADDQ R13, SI
	ADDQ R13, R11
	ADDQ $128, DI
	DECQ CX
	JNE  loopbf16

	VBROADCASTSS alpha+40(FP), Z3
	VFMADD213PS (DX), Z3, Z4
	VMOVUPS Z4, (DX)
	VFMADD213PS 64(DX), Z3, Z5
	VMOVUPS Z5, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z6
	VMOVUPS Z6, (DX)
	VFMADD213PS 64(DX), Z3, Z7
	VMOVUPS Z7, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z8
	VMOVUPS Z8, (DX)
	VFMADD213PS 64(DX), Z3, Z9
	VMOVUPS Z9, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z10
	VMOVUPS Z10, (DX)
	VFMADD213PS 64(DX), Z3, Z11
	VMOVUPS Z11, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z12
	VMOVUPS Z12, (DX)
	VFMADD213PS 64(DX), Z3, Z13
	VMOVUPS Z13, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z14
	VMOVUPS Z14, (DX)
	VFMADD213PS 64(DX), Z3, Z15
	VMOVUPS Z15, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z16
	VMOVUPS Z16, (DX)
	VFMADD213PS 64(DX), Z3, Z17
	VMOVUPS Z17, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z18
	VMOVUPS Z18, (DX)
	VFMADD213PS 64(DX), Z3, Z19
	VMOVUPS Z19, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z20
	VMOVUPS Z20, (DX)
	VFMADD213PS 64(DX), Z3, Z21
	VMOVUPS Z21, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z22
	VMOVUPS Z22, (DX)
	VFMADD213PS 64(DX), Z3, Z23
	VMOVUPS Z23, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z24
	VMOVUPS Z24, (DX)
	VFMADD213PS 64(DX), Z3, Z25
	VMOVUPS Z25, 64(DX)
	ADDQ R8, DX
	VFMADD213PS (DX), Z3, Z26
	VMOVUPS Z26, (DX)
	VFMADD213PS 64(DX), Z3, Z27
	VMOVUPS Z27, 64(DX)
	VZEROUPPER
	RET

// vcvtne2ps2bf16 zmm2, zmm1, zmm0: words 0-15 of zmm2 = bf16(zmm0), words
// 16-31 = bf16(zmm1), round to nearest even.
#define VCVTNE2PS2BF16_Z2_Z1_Z0 BYTE $0x62; BYTE $0xf2; BYTE $0x77; BYTE $0x48; BYTE $0x72; BYTE $0xd0

// bf16Interleave<> is the VPERMW index that turns words (lo0..lo15,
// hi0..hi15) into pairs (lo0, hi0, lo1, hi1, ...).
DATA bf16Interleave<>+0(SB)/8, $0x0011000100100000
DATA bf16Interleave<>+8(SB)/8, $0x0013000300120002
DATA bf16Interleave<>+16(SB)/8, $0x0015000500140004
DATA bf16Interleave<>+24(SB)/8, $0x0017000700160006
DATA bf16Interleave<>+32(SB)/8, $0x0019000900180008
DATA bf16Interleave<>+40(SB)/8, $0x001b000b001a000a
DATA bf16Interleave<>+48(SB)/8, $0x001d000d001c000c
DATA bf16Interleave<>+56(SB)/8, $0x001f000f001e000e
GLOBL bf16Interleave<>(SB), RODATA|NOPTR, $64

// func bf16PackRowPairs32(dst *uint32, src *float32, ld int, kq int)
//
// For q < kq and j < 32: dst[q*32+j] holds bf16(src[2q*ld+j]) in its low
// half and bf16(src[(2q+1)*ld+j]) in its high half. kq >= 1.
TEXT ·bf16PackRowPairs32(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ kq+24(FP), CX
	VMOVDQU64 bf16Interleave<>(SB), Z7

looprows:
	VMOVUPS (SI), Z0
	VMOVUPS (SI)(R8*1), Z1
	VCVTNE2PS2BF16_Z2_Z1_Z0
	VPERMW Z2, Z7, Z2
	VMOVDQU32 Z2, (DI)
	VMOVUPS 64(SI), Z0
	VMOVUPS 64(SI)(R8*1), Z1
	VCVTNE2PS2BF16_Z2_Z1_Z0
	VPERMW Z2, Z7, Z2
	VMOVDQU32 Z2, 64(DI)
	LEAQ (SI)(R8*2), SI
	ADDQ $128, DI
	DECQ CX
	JNE  looprows
	VZEROUPPER
	RET

// func bf16CvtPairs(dst *uint32, src *float32, nq int)
//
// For q < nq: dst[q] holds bf16(src[2q]) in its low half and bf16(src[2q+1])
// in its high half. nq is a positive multiple of 16.
TEXT ·bf16CvtPairs(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ nq+16(FP), CX

loopcvt:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VCVTNE2PS2BF16_Z2_Z1_Z0
	VMOVDQU32 Z2, (DI)
	ADDQ $128, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JNE  loopcvt
	VZEROUPPER
	RET

// func bf16RoundSlice(dst, src *float32, n int)
//
// dst[i] = src[i] rounded to bfloat16 (nearest, ties to even) and widened
// back, for i < n, n a positive multiple of 16: exactly bf16Bits(v)<<16,
// subnormals kept, NaN made quiet, in AVX-512F integer arithmetic:
// (b + 0x7fff + (b>>16)&1) &^ 0xffff, and (b | 0x400000) &^ 0xffff where b
// is a NaN.
TEXT ·bf16RoundSlice(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVL $1, AX
	VPBROADCASTD AX, Z4           // 1
	MOVL $0x7fff, AX
	VPBROADCASTD AX, Z5           // 0x7fff
	MOVL $0xffff0000, AX
	VPBROADCASTD AX, Z6           // high half mask
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z7           // abs mask
	MOVL $0x7f800000, AX
	VPBROADCASTD AX, Z8           // +Inf
	MOVL $0x00400000, AX
	VPBROADCASTD AX, Z9           // quiet bit

loopround:
	VMOVDQU32 (SI), Z0
	VPSRLD    $16, Z0, Z1
	VPANDD    Z4, Z1, Z1
	VPADDD    Z5, Z1, Z1
	VPADDD    Z0, Z1, Z1
	VPANDD    Z6, Z1, Z1
	VPANDD    Z7, Z0, Z2
	VPCMPUD   $6, Z8, Z2, K1     // K1: |b| > +Inf, a NaN
	VPORD     Z9, Z0, Z3
	VPANDD    Z6, Z3, Z3
	VMOVDQA32 Z3, K1, Z1
	VMOVDQU32 Z1, (DI)
	ADDQ      $64, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JNE       loopround
	VZEROUPPER
	RET

// func bf16PackColPairs12(dst *uint32, src *float32, ld int, kq int)
//
// For q < kq and i < 12: dst[q*12+i] holds bf16(src[2q*ld+i]) in its low
// half and bf16(src[(2q+1)*ld+i]) in its high half: a transposed A's strip
// of 12 rows. kq >= 1. Masked loads read only the 12 columns.
TEXT ·bf16PackColPairs12(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ kq+24(FP), CX
	MOVL $0x0fff, AX
	KMOVW AX, K1
	VMOVDQU64 bf16Interleave<>(SB), Z7

loopcols:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (SI)(R8*1), K1, Z1
	VCVTNE2PS2BF16_Z2_Z1_Z0
	VPERMW    Z2, Z7, Z2
	VMOVDQU32 Z2, K1, (DI)
	LEAQ      (SI)(R8*2), SI
	ADDQ      $48, DI
	DECQ      CX
	JNE       loopcols
	VZEROUPPER
	RET
