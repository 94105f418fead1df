//go:build amd64 && !purego

#include "textflag.h"

// func bf16EpRows32(c *float32, ldc int, scale, shift, res *float32, ldr int, floor float32, rows int)
//
// For i < rows and j < 32, with c's rows ldc floats apart and res's ldr
// bytes apart:
// c[i*ldc+j] = max(floor, c[i*ldc+j]*scale[i] + shift[i] + res[i*ldr+j]),
// each operation rounded to float32 in that order (no FMA). VMAXPS returns
// its second source, the value, when either is NaN, so NaN propagates.
// rows >= 1.
TEXT ·bf16EpRows32(SB), NOSPLIT, $0-64
	MOVQ c+0(FP), DX
	MOVQ ldc+8(FP), R8
	SHLQ $2, R8
	MOVQ scale+16(FP), R11
	MOVQ shift+24(FP), R12
	MOVQ res+32(FP), R9
	MOVQ ldr+40(FP), R10
	VBROADCASTSS floor+48(FP), Z28
	MOVQ rows+56(FP), CX

looprow:
	VBROADCASTSS (R11), Z2
	VBROADCASTSS (R12), Z3
	VMULPS (DX), Z2, Z0
	VMULPS 64(DX), Z2, Z1
	VADDPS Z3, Z0, Z0
	VADDPS Z3, Z1, Z1
	VADDPS (R9), Z0, Z0
	VADDPS 64(R9), Z1, Z1
	VMAXPS Z0, Z28, Z0
	VMAXPS Z1, Z28, Z1
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	ADDQ R8, DX
	ADDQ R10, R9
	ADDQ $4, R11
	ADDQ $4, R12
	DECQ CX
	JNE  looprow
	VZEROUPPER
	RET
