//go:build amd64 && !purego

#include "textflag.h"

// The fused tile transforms below take the Winograd matrices' zeros and
// shared sums into account (Lavin & Gray's F(4,3) and F(2,3) formulas)
// instead of multiplying by every coefficient: 14 vector operations per
// six outputs of B^T d where the dense 6 x 6 product takes 48. Each call
// transforms one tile for nblk blocks of 16 channels, both passes, with the
// intermediate alpha x alpha block of vectors in tmp (L1). Constants: Z28
// = 4, Z29 = 5, Z30 = 2, Z31 = 8.
#define WGCONSTS \
	MOVL         $0x40800000, AX \
	VPBROADCASTD AX, Z28 \
	MOVL         $0x40A00000, AX \
	VPBROADCASTD AX, Z29 \
	MOVL         $0x40000000, AX \
	VPBROADCASTD AX, Z30 \
	MOVL         $0x41000000, AX \
	VPBROADCASTD AX, Z31

// BT6 computes Z6-Z11 = B^T (Z0-Z5) for F(4,3):
// r0 = 4 d0 - 5 d2 + d4, r1 = (d3 + d4) - 4 (d1 + d2),
// r2 = (d4 - d3) + 4 (d1 - d2), r3 = (d4 - d2) + 2 (d3 - d1),
// r4 = (d4 - d2) - 2 (d3 - d1), r5 = 4 d1 - 5 d3 + d5.
#define BT6 \
	VMOVAPS      Z4, Z6 \
	VFMADD231PS  Z28, Z0, Z6 \
	VFNMADD231PS Z29, Z2, Z6 \
	VADDPS       Z2, Z1, Z12 \
	VADDPS       Z4, Z3, Z7 \
	VFNMADD231PS Z28, Z12, Z7 \
	VSUBPS       Z2, Z1, Z13 \
	VSUBPS       Z3, Z4, Z8 \
	VFMADD231PS  Z28, Z13, Z8 \
	VSUBPS       Z1, Z3, Z14 \
	VSUBPS       Z2, Z4, Z9 \
	VMOVAPS      Z9, Z10 \
	VFMADD231PS  Z30, Z14, Z9 \
	VFNMADD231PS Z30, Z14, Z10 \
	VMOVAPS      Z5, Z11 \
	VFMADD231PS  Z28, Z1, Z11 \
	VFNMADD231PS Z29, Z3, Z11

// AT6 computes Z6-Z9 = A^T (Z0-Z5) for F(4,3): with a = t1 + t2,
// b = t1 - t2, c = t3 + t4, d = t3 - t4: m0 = (t0 + a) + c,
// m1 = b + 2 d, m2 = a + 4 c, m3 = (b + t5) + 8 d.
#define AT6 \
	VADDPS      Z2, Z1, Z12 \
	VSUBPS      Z2, Z1, Z13 \
	VADDPS      Z4, Z3, Z14 \
	VSUBPS      Z4, Z3, Z15 \
	VADDPS      Z12, Z0, Z6 \
	VADDPS      Z14, Z6, Z6 \
	VMOVAPS     Z13, Z7 \
	VFMADD231PS Z30, Z15, Z7 \
	VMOVAPS     Z12, Z8 \
	VFMADD231PS Z28, Z14, Z8 \
	VADDPS      Z5, Z13, Z9 \
	VFMADD231PS Z31, Z15, Z9

// BT4 computes Z6-Z9 = B^T (Z0-Z3) for F(2,3): d0 - d2, d1 + d2,
// d2 - d1, d1 - d3.
#define BT4 \
	VSUBPS Z2, Z0, Z6 \
	VADDPS Z2, Z1, Z7 \
	VSUBPS Z1, Z2, Z8 \
	VSUBPS Z3, Z1, Z9

// AT4 computes Z6-Z7 = A^T (Z0-Z3) for F(2,3): (t0 + t1) + t2,
// (t1 - t2) - t3.
#define AT4 \
	VADDPS Z1, Z0, Z6 \
	VADDPS Z2, Z6, Z6 \
	VSUBPS Z2, Z1, Z7 \
	VSUBPS Z3, Z7, Z7

// LOADN loads n (4 or 6) vectors from R11, CX bytes apart, into Z0-Z(n-1).
#define LOAD4 \
	VMOVUPS (R11), Z0 \
	ADDQ    CX, R11 \
	VMOVUPS (R11), Z1 \
	ADDQ    CX, R11 \
	VMOVUPS (R11), Z2 \
	ADDQ    CX, R11 \
	VMOVUPS (R11), Z3

#define LOAD6 \
	LOAD4 \
	ADDQ    CX, R11 \
	VMOVUPS (R11), Z4 \
	ADDQ    CX, R11 \
	VMOVUPS (R11), Z5

// STOREN stores Z6-Z(5+n) at R11, DX bytes apart, leaving R11 n strides on.
#define STORE2 \
	VMOVUPS Z6, (R11) \
	ADDQ    DX, R11 \
	VMOVUPS Z7, (R11) \
	ADDQ    DX, R11

#define STORE4 \
	STORE2 \
	VMOVUPS Z8, (R11) \
	ADDQ    DX, R11 \
	VMOVUPS Z9, (R11) \
	ADDQ    DX, R11

#define STORE6 \
	STORE4 \
	VMOVUPS Z10, (R11) \
	ADDQ    DX, R11 \
	VMOVUPS Z11, (R11) \
	ADDQ    DX, R11

// func wgIn6AVX512(src *float32, rowStride, colStride int, dst *float32, dstStride int, tmp *float32, nblk int)
//
// F(4,3)'s input transform of one 6 x 6 tile: for each block b < nblk of
// 16 channels, V[xi] (16 floats at dst + xi*dstStride + 64b, xi = 6i+q)
// = (B^T d B)[i][q], d[l][j] the 16 floats at src + l*rowStride +
// j*colStride + 64b (strides in bytes). tmp holds 36 vectors.
TEXT ·wgIn6AVX512(SB), NOSPLIT, $0-56
	MOVQ src+0(FP), SI
	MOVQ rowStride+8(FP), R14
	MOVQ colStride+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ dstStride+32(FP), R15
	MOVQ tmp+40(FP), R13
	MOVQ nblk+48(FP), R8
	WGCONSTS

in6blk:
	// Columns: t[i][j] = sum_l B^T[i][l] d[l][j], stored at tmp + (6i+j)*64.
	MOVQ SI, R9
	MOVQ R13, R10
	MOVQ $6, R12
	MOVQ R14, CX
	MOVQ $384, DX

in6col:
	MOVQ R9, R11
	LOAD6
	BT6
	MOVQ R10, R11
	STORE6
	ADDQ BX, R9
	ADDQ $64, R10
	DECQ R12
	JNE  in6col

	// Rows: V[6i+q] = sum_j B^T[q][j] t[i][j].
	MOVQ R13, R10
	MOVQ DI, R9
	MOVQ $6, R12
	MOVQ $64, CX
	MOVQ R15, DX

in6row:
	MOVQ R10, R11
	LOAD6
	BT6
	MOVQ R9, R11
	STORE6
	MOVQ R11, R9
	ADDQ $384, R10
	DECQ R12
	JNE  in6row

	ADDQ $64, SI
	ADDQ $64, DI
	DECQ R8
	JNE  in6blk
	VZEROUPPER
	RET

// func wgIn4AVX512(src *float32, rowStride, colStride int, dst *float32, dstStride int, tmp *float32, nblk int)
//
// wgIn6AVX512 for F(2,3)'s 4 x 4 tiles (V[4i+q]; tmp holds 16 vectors).
TEXT ·wgIn4AVX512(SB), NOSPLIT, $0-56
	MOVQ src+0(FP), SI
	MOVQ rowStride+8(FP), R14
	MOVQ colStride+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ dstStride+32(FP), R15
	MOVQ tmp+40(FP), R13
	MOVQ nblk+48(FP), R8

in4blk:
	MOVQ SI, R9
	MOVQ R13, R10
	MOVQ $4, R12
	MOVQ R14, CX
	MOVQ $256, DX

in4col:
	MOVQ R9, R11
	LOAD4
	BT4
	MOVQ R10, R11
	STORE4
	ADDQ BX, R9
	ADDQ $64, R10
	DECQ R12
	JNE  in4col

	MOVQ R13, R10
	MOVQ DI, R9
	MOVQ $4, R12
	MOVQ $64, CX
	MOVQ R15, DX

in4row:
	MOVQ R10, R11
	LOAD4
	BT4
	MOVQ R9, R11
	STORE4
	MOVQ R11, R9
	ADDQ $256, R10
	DECQ R12
	JNE  in4row

	ADDQ $64, SI
	ADDQ $64, DI
	DECQ R8
	JNE  in4blk
	VZEROUPPER
	RET

// func wgOut6AVX512(src *float32, srcStride int, dst *float32, rowStride, colStride int, tmp *float32, nblk int)
//
// F(4,3)'s output transform of one tile: for each block b < nblk of 16
// channels, y[i][q] (16 floats at dst + i*rowStride + q*colStride + 64b)
// = (A^T M A)[i][q], M[xi] the 16 floats at src + xi*srcStride + 64b
// (strides in bytes). tmp holds 24 vectors.
TEXT ·wgOut6AVX512(SB), NOSPLIT, $0-56
	MOVQ src+0(FP), SI
	MOVQ srcStride+8(FP), R14
	MOVQ dst+16(FP), DI
	MOVQ rowStride+24(FP), R15
	MOVQ colStride+32(FP), BX
	MOVQ tmp+40(FP), R13
	MOVQ nblk+48(FP), R8
	WGCONSTS

out6blk:
	// Columns: t[i][j] = sum_l A^T[i][l] M[6l+j], stored at tmp + (6i+j)*64.
	MOVQ SI, R9
	MOVQ R13, R10
	MOVQ $6, R12
	LEAQ (R14)(R14*2), CX
	ADDQ CX, CX
	MOVQ $384, DX

out6col:
	MOVQ R9, R11
	LOAD6
	AT6
	MOVQ R10, R11
	STORE4
	ADDQ R14, R9
	ADDQ $64, R10
	DECQ R12
	JNE  out6col

	// Rows: y[i][q] = sum_j A^T[q][j] t[i][j].
	MOVQ R13, R10
	MOVQ DI, R9
	MOVQ $4, R12
	MOVQ $64, CX
	MOVQ BX, DX

out6row:
	MOVQ R10, R11
	LOAD6
	AT6
	MOVQ R9, R11
	STORE4
	ADDQ R15, R9
	ADDQ $384, R10
	DECQ R12
	JNE  out6row

	ADDQ $64, SI
	ADDQ $64, DI
	DECQ R8
	JNE  out6blk
	VZEROUPPER
	RET

// func wgOut4AVX512(src *float32, srcStride int, dst *float32, rowStride, colStride int, tmp *float32, nblk int)
//
// wgOut6AVX512 for F(2,3): M[4l+j], a 2 x 2 output tile; tmp holds 8
// vectors.
TEXT ·wgOut4AVX512(SB), NOSPLIT, $0-56
	MOVQ src+0(FP), SI
	MOVQ srcStride+8(FP), R14
	MOVQ dst+16(FP), DI
	MOVQ rowStride+24(FP), R15
	MOVQ colStride+32(FP), BX
	MOVQ tmp+40(FP), R13
	MOVQ nblk+48(FP), R8

out4blk:
	MOVQ SI, R9
	MOVQ R13, R10
	MOVQ $4, R12
	MOVQ R14, CX
	SHLQ $2, CX
	MOVQ $256, DX

out4col:
	MOVQ R9, R11
	LOAD4
	AT4
	MOVQ R10, R11
	STORE2
	ADDQ R14, R9
	ADDQ $64, R10
	DECQ R12
	JNE  out4col

	MOVQ R13, R10
	MOVQ DI, R9
	MOVQ $2, R12
	MOVQ $64, CX
	MOVQ BX, DX

out4row:
	MOVQ R10, R11
	LOAD4
	AT4
	MOVQ R9, R11
	STORE2
	ADDQ R15, R9
	ADDQ $256, R10
	DECQ R12
	JNE  out4row

	ADDQ $64, SI
	ADDQ $64, DI
	DECQ R8
	JNE  out4blk
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
