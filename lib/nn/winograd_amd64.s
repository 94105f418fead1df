//go:build amd64 && !purego

#include "textflag.h"

// func wgMat6AVX512(coef *float32, r int, src *float32, srcStride int, dst *float32, dstStride int, nblk int)
//
// For b < nblk and i < r (both >= 1): the 16 floats at dst+i*dstStride+64b
// get sum over j < 6 of coef[6i+j] times the 16 floats at
// src+j*srcStride+64b (strides in bytes). The six products are summed in
// pairs: ((c0 x0 + c1 x1) + (c2 x2 + c3 x3)) + (c4 x4 + c5 x5).
TEXT ·wgMat6AVX512(SB), NOSPLIT, $0-56
	MOVQ coef+0(FP), AX
	MOVQ r+8(FP), BX
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), CX
	MOVQ dst+32(FP), DI
	MOVQ dstStride+40(FP), DX
	MOVQ nblk+48(FP), R8

blk:
	MOVQ    SI, R9
	VMOVUPS (R9), Z0
	ADDQ    CX, R9
	VMOVUPS (R9), Z1
	ADDQ    CX, R9
	VMOVUPS (R9), Z2
	ADDQ    CX, R9
	VMOVUPS (R9), Z3
	ADDQ    CX, R9
	VMOVUPS (R9), Z4
	ADDQ    CX, R9
	VMOVUPS (R9), Z5
	MOVQ    AX, R10
	MOVQ    DI, R11
	MOVQ    BX, R12

row:
	VMULPS.BCST      (R10), Z0, Z6
	VFMADD231PS.BCST 4(R10), Z1, Z6
	VMULPS.BCST      8(R10), Z2, Z7
	VFMADD231PS.BCST 12(R10), Z3, Z7
	VMULPS.BCST      16(R10), Z4, Z8
	VFMADD231PS.BCST 20(R10), Z5, Z8
	VADDPS           Z7, Z6, Z6
	VADDPS           Z8, Z6, Z6
	VMOVUPS          Z6, (R11)
	ADDQ             $24, R10
	ADDQ             DX, R11
	DECQ             R12
	JNE              row

	ADDQ $64, SI
	ADDQ $64, DI
	DECQ R8
	JNE  blk
	VZEROUPPER
	RET

// func wgMat4AVX512(coef *float32, r int, src *float32, srcStride int, dst *float32, dstStride int, nblk int)
//
// wgMat6AVX512 with four source vectors: (c0 x0 + c1 x1) + (c2 x2 + c3 x3).
TEXT ·wgMat4AVX512(SB), NOSPLIT, $0-56
	MOVQ coef+0(FP), AX
	MOVQ r+8(FP), BX
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), CX
	MOVQ dst+32(FP), DI
	MOVQ dstStride+40(FP), DX
	MOVQ nblk+48(FP), R8

blk4:
	MOVQ    SI, R9
	VMOVUPS (R9), Z0
	ADDQ    CX, R9
	VMOVUPS (R9), Z1
	ADDQ    CX, R9
	VMOVUPS (R9), Z2
	ADDQ    CX, R9
	VMOVUPS (R9), Z3
	MOVQ    AX, R10
	MOVQ    DI, R11
	MOVQ    BX, R12

row4:
	VMULPS.BCST      (R10), Z0, Z6
	VFMADD231PS.BCST 4(R10), Z1, Z6
	VMULPS.BCST      8(R10), Z2, Z7
	VFMADD231PS.BCST 12(R10), Z3, Z7
	VADDPS           Z7, Z6, Z6
	VMOVUPS          Z6, (R11)
	ADDQ             $16, R10
	ADDQ             DX, R11
	DECQ             R12
	JNE              row4

	ADDQ $64, SI
	ADDQ $64, DI
	DECQ R8
	JNE  blk4
	VZEROUPPER
	RET

// TRANSPOSE16 transposes the 16x16 block held in Z0-Z15 (row i in Zi) in
// place (column j ends in Zj), using Z16-Z31: in-lane 2x2 and 4x4 steps
// (VUNPCKLPS/VUNPCKHPS, VSHUFPS), then two 128-bit lane steps
// (VSHUFF32X4).
#define UNPACK2(a, b, lo, hi) \
	VUNPCKLPS b, a, lo \
	VUNPCKHPS b, a, hi

#define SHUF4(t0, t1, t2, t3, r0, r1, r2, r3) \
	VSHUFPS $0x44, t2, t0, r0 \
	VSHUFPS $0xEE, t2, t0, r1 \
	VSHUFPS $0x44, t3, t1, r2 \
	VSHUFPS $0xEE, t3, t1, r3

#define LANES(ra, rb, rc, rd) \
	VSHUFF32X4 $0x88, rb, ra, Z16 \
	VSHUFF32X4 $0xDD, rb, ra, Z17 \
	VSHUFF32X4 $0x88, rd, rc, Z18 \
	VSHUFF32X4 $0xDD, rd, rc, Z19 \
	VSHUFF32X4 $0x88, Z18, Z16, ra \
	VSHUFF32X4 $0xDD, Z18, Z16, rc \
	VSHUFF32X4 $0x88, Z19, Z17, rb \
	VSHUFF32X4 $0xDD, Z19, Z17, rd

#define TRANSPOSE16 \
	UNPACK2(Z0, Z1, Z16, Z17) \
	UNPACK2(Z2, Z3, Z18, Z19) \
	UNPACK2(Z4, Z5, Z20, Z21) \
	UNPACK2(Z6, Z7, Z22, Z23) \
	UNPACK2(Z8, Z9, Z24, Z25) \
	UNPACK2(Z10, Z11, Z26, Z27) \
	UNPACK2(Z12, Z13, Z28, Z29) \
	UNPACK2(Z14, Z15, Z30, Z31) \
	SHUF4(Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3) \
	SHUF4(Z20, Z21, Z22, Z23, Z4, Z5, Z6, Z7) \
	SHUF4(Z24, Z25, Z26, Z27, Z8, Z9, Z10, Z11) \
	SHUF4(Z28, Z29, Z30, Z31, Z12, Z13, Z14, Z15) \
	LANES(Z0, Z4, Z8, Z12) \
	LANES(Z1, Z5, Z9, Z13) \
	LANES(Z2, Z6, Z10, Z14) \
	LANES(Z3, Z7, Z11, Z15)

// LOAD16 loads 16 rows of 16 floats from SI, CX bytes apart, into Z0-Z15.
#define LOAD16 \
	MOVQ    SI, R9 \
	VMOVUPS (R9), Z0 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z1 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z2 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z3 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z4 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z5 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z6 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z7 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z8 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z9 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z10 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z11 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z12 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z13 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z14 \
	ADDQ    CX, R9 \
	VMOVUPS (R9), Z15

// func transpose16AVX512(src *float32, srcStride int, dst *float32, dstStride int)
//
// dst row j (16 floats, rows dstStride bytes apart) = column j of the
// 16 x 16 block at src (rows srcStride bytes apart).
TEXT ·transpose16AVX512(SB), NOSPLIT, $0-32
	MOVQ src+0(FP), SI
	MOVQ srcStride+8(FP), CX
	MOVQ dst+16(FP), DI
	MOVQ dstStride+24(FP), DX
	LOAD16
	TRANSPOSE16
	MOVQ    DI, R9
	VMOVUPS Z0, (R9)
	ADDQ    DX, R9
	VMOVUPS Z1, (R9)
	ADDQ    DX, R9
	VMOVUPS Z2, (R9)
	ADDQ    DX, R9
	VMOVUPS Z3, (R9)
	ADDQ    DX, R9
	VMOVUPS Z4, (R9)
	ADDQ    DX, R9
	VMOVUPS Z5, (R9)
	ADDQ    DX, R9
	VMOVUPS Z6, (R9)
	ADDQ    DX, R9
	VMOVUPS Z7, (R9)
	ADDQ    DX, R9
	VMOVUPS Z8, (R9)
	ADDQ    DX, R9
	VMOVUPS Z9, (R9)
	ADDQ    DX, R9
	VMOVUPS Z10, (R9)
	ADDQ    DX, R9
	VMOVUPS Z11, (R9)
	ADDQ    DX, R9
	VMOVUPS Z12, (R9)
	ADDQ    DX, R9
	VMOVUPS Z13, (R9)
	ADDQ    DX, R9
	VMOVUPS Z14, (R9)
	ADDQ    DX, R9
	VMOVUPS Z15, (R9)
	VZEROUPPER
	RET

// EPSTORE finishes output row j held in zr: adds shift[j] (R10) and the
// residual row at R11, clamps below at Z31 (0 for a ReLU, -Inf otherwise;
// VMAXPS returns its second source, the value, when either is NaN) and
// stores it at R9; then steps R9, R10, R11 to the next row.
#define EPSTORE(zr) \
	VADDPS.BCST (R10), zr, zr \
	VADDPS      (R11), zr, K1, zr \
	VMAXPS      zr, Z31, zr \
	VMOVUPS     zr, K1, (R9) \
	ADDQ        DX, R9 \
	ADDQ        $4, R10 \
	ADDQ        R12, R11

// func wgStore16AVX512(src *float32, srcStride int, dst *float32, dstStride int, shift *float32, res *float32, resStride int, floor float32, mask uint16)
//
// transpose16AVX512 with an epilogue: dst row j = max(floor, column j +
// shift[j] + res row j) (res rows resStride bytes apart; 0 repeats one),
// reading and writing only the columns (lanes) set in mask (masked
// lanes of res and dst are never touched).
TEXT ·wgStore16AVX512(SB), NOSPLIT, $0-62
	MOVQ src+0(FP), SI
	MOVQ srcStride+8(FP), CX
	MOVQ dst+16(FP), DI
	MOVQ dstStride+24(FP), DX
	LOAD16
	TRANSPOSE16
	MOVQ         shift+32(FP), R10
	MOVQ         res+40(FP), R11
	MOVQ         resStride+48(FP), R12
	VBROADCASTSS floor+56(FP), Z31
	MOVWLZX      mask+60(FP), AX
	KMOVW        AX, K1
	MOVQ         DI, R9
	EPSTORE(Z0)
	EPSTORE(Z1)
	EPSTORE(Z2)
	EPSTORE(Z3)
	EPSTORE(Z4)
	EPSTORE(Z5)
	EPSTORE(Z6)
	EPSTORE(Z7)
	EPSTORE(Z8)
	EPSTORE(Z9)
	EPSTORE(Z10)
	EPSTORE(Z11)
	EPSTORE(Z12)
	EPSTORE(Z13)
	EPSTORE(Z14)
	EPSTORE(Z15)
	VZEROUPPER
	RET
