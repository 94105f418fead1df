//go:build amd64 && !purego

#include "textflag.h"

// func reluAVX2(p *float32, n int)
// For each 8 floats: mask = v <= 0 (ordered: false for NaN), v &^= mask.
TEXT ·reluAVX2(SB), NOSPLIT, $0-16
	MOVQ   p+0(FP), SI
	MOVQ   n+8(FP), CX
	SHRQ   $3, CX
	JZ     done
	VXORPS Y0, Y0, Y0

loop:
	VMOVUPS (SI), Y1
	VCMPPS  $2, Y0, Y1, Y2 // Y2 = Y1 <= 0 (LE_OS)
	VANDNPS Y1, Y2, Y3     // Y3 = ^Y2 & Y1
	VMOVUPS Y3, (SI)
	ADDQ    $32, SI
	DECQ    CX
	JNZ     loop
	VZEROUPPER

done:
	RET
