//go:build amd64 && !purego

#include "textflag.h"

// Both routines work on order keys: the float32 bits with the low 31 bits
// flipped when the sign is set (an involution), so that signed integer
// order is float order with -0 < +0 (VPMAXSD then agrees with Go's max
// for every non-NaN input, where VMAXPS would keep its second operand on
// a tie of zeros). Z31 holds 0x7fffffff in every lane:
// key = x ^ ((x >>arith 31) & 0x7fffffff) is one VPSRAD and one
// VPTERNLOGD (imm 0x78: A ^ (B & C)).

// func maxRows3KeysAVX512(a, b, c *float32, dst *int32, n int) (nan int)
//
// dst[i] = key(max(a[i], b[i], c[i])) for i < n (n >= 1); nan is nonzero
// when any of the 3n inputs is a NaN (the keys are then meaningless).
TEXT ·maxRows3KeysAVX512(SB), NOSPLIT, $0-48
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ c+16(FP), R10
	MOVQ dst+24(FP), DX
	MOVQ n+32(FP), SI
	VPTERNLOGD $0xff, Z31, Z31, Z31
	VPSRLD     $1, Z31, Z31
	KXORW      K4, K4, K4
	CMPQ       SI, $16
	JLT        tail

loop:
	VMOVUPS    (AX), Z0
	VMOVUPS    (BX), Z1
	VMOVUPS    (R10), Z2
	VCMPPS     $3, Z1, Z0, K1
	VCMPPS     $3, Z2, Z2, K2
	KORW       K1, K2, K1
	KORW       K1, K4, K4
	VPSRAD     $31, Z0, Z3
	VPSRAD     $31, Z1, Z4
	VPSRAD     $31, Z2, Z5
	VPTERNLOGD $0x78, Z31, Z3, Z0
	VPTERNLOGD $0x78, Z31, Z4, Z1
	VPTERNLOGD $0x78, Z31, Z5, Z2
	VPMAXSD    Z1, Z0, Z0
	VPMAXSD    Z2, Z0, Z0
	VMOVDQU32  Z0, (DX)
	ADDQ       $64, AX
	ADDQ       $64, BX
	ADDQ       $64, R10
	ADDQ       $64, DX
	SUBQ       $16, SI
	CMPQ       SI, $16
	JGE        loop

tail:
	TESTQ      SI, SI
	JEQ        done
	MOVL       $1, R8
	MOVQ       SI, CX
	SHLL       CX, R8
	DECL       R8
	KMOVW      R8, K3
	VMOVUPS.Z  (AX), K3, Z0
	VMOVUPS.Z  (BX), K3, Z1
	VMOVUPS.Z  (R10), K3, Z2
	VCMPPS     $3, Z1, Z0, K1
	VCMPPS     $3, Z2, Z2, K2
	KORW       K1, K2, K1
	KORW       K1, K4, K4
	VPSRAD     $31, Z0, Z3
	VPSRAD     $31, Z1, Z4
	VPSRAD     $31, Z2, Z5
	VPTERNLOGD $0x78, Z31, Z3, Z0
	VPTERNLOGD $0x78, Z31, Z4, Z1
	VPTERNLOGD $0x78, Z31, Z5, Z2
	VPMAXSD    Z1, Z0, Z0
	VPMAXSD    Z2, Z0, Z0
	VMOVDQU32  Z0, K3, (DX)

done:
	KMOVW      K4, AX
	MOVQ       AX, nan+40(FP)
	VZEROUPPER
	RET

// func maxCols3AVX512(keys *int32, out *float32, n int, idx *int32)
//
// out[j] = unkey(max(keys[2j], keys[2j+1], keys[2j+2])) for j < n
// (n >= 1): the horizontal 3-wide, stride-2 pass. keys is read up to
// index 32*ceil(n/16) inclusive. idx holds the VPERMT2D indexes of the
// even lanes (0, 2, ..., 30) then of the odd ones (1, 3, ..., 31).
TEXT ·maxCols3AVX512(SB), NOSPLIT, $0-32
	MOVQ keys+0(FP), SI
	MOVQ out+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ idx+24(FP), AX
	VMOVDQU32  (AX), Z29
	VMOVDQU32  64(AX), Z30
	VPTERNLOGD $0xff, Z31, Z31, Z31
	VPSRLD     $1, Z31, Z31
	CMPQ       CX, $16
	JLT        ctail

cloop:
	VMOVDQU32  (SI), Z0
	VMOVDQA32  Z0, Z1
	VMOVDQU32  4(SI), Z2
	VPERMT2D   64(SI), Z29, Z0
	VPERMT2D   64(SI), Z30, Z1
	VPERMT2D   68(SI), Z30, Z2
	VPMAXSD    Z1, Z0, Z0
	VPMAXSD    Z2, Z0, Z0
	VPSRAD     $31, Z0, Z3
	VPTERNLOGD $0x78, Z31, Z3, Z0
	VMOVDQU32  Z0, (DI)
	ADDQ       $128, SI
	ADDQ       $64, DI
	SUBQ       $16, CX
	CMPQ       CX, $16
	JGE        cloop

ctail:
	TESTQ      CX, CX
	JEQ        cdone
	MOVL       $1, R8
	SHLL       CX, R8
	DECL       R8
	KMOVW      R8, K3
	VMOVDQU32  (SI), Z0
	VMOVDQA32  Z0, Z1
	VMOVDQU32  4(SI), Z2
	VPERMT2D   64(SI), Z29, Z0
	VPERMT2D   64(SI), Z30, Z1
	VPERMT2D   68(SI), Z30, Z2
	VPMAXSD    Z1, Z0, Z0
	VPMAXSD    Z2, Z0, Z0
	VPSRAD     $31, Z0, Z3
	VPTERNLOGD $0x78, Z31, Z3, Z0
	VMOVDQU32  Z0, K3, (DI)

cdone:
	VZEROUPPER
	RET
