//go:build amd64 && !purego

#include "textflag.h"

// func copyRunsAVX512(dst, src *float32, offs *int, kb, ldd int, masks uint64)
//
// For p < kb (kb >= 1): row p of dst (ldd values apart) gets the values
// at src+offs[p] in the lanes of masks: its low 16 bits select the first
// 16 values, the next 16 bits the following 16. Masked loads read only
// those values, masked stores write only them.
TEXT ·copyRunsAVX512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ offs+16(FP), BX
	MOVQ kb+24(FP), CX
	MOVQ ldd+32(FP), R8
	SHLQ $2, R8
	MOVQ masks+40(FP), AX
	KMOVW AX, K1
	SHRQ  $16, AX
	KMOVW AX, K2

loop:
	MOVQ      (BX), R11
	LEAQ      (SI)(R11*4), R11
	VMOVUPS.Z (R11), K1, Z0
	VMOVUPS.Z 64(R11), K2, Z1
	VMOVUPS   Z0, K1, (DI)
	VMOVUPS   Z1, K2, 64(DI)
	ADDQ      $8, BX
	ADDQ      R8, DI
	DECQ      CX
	JNE       loop
	VZEROUPPER
	RET
