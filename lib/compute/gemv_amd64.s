//go:build amd64 && !purego

#include "textflag.h"

// func gemvTAVX512(a, b *float32, ldb, k int, c *float32, n int, alpha float32)
//
// c[j] += alpha * sum_p a[p]*b[j*ldb+p] for j < n (n >= 1, k >= 1): a
// 1 x k row times the transpose of the n x k row-major b, four rows of b
// at a time (one load of a per four FMAs), the k%16 tail with a masked
// load. Each row sums 16 lanes, folded pairwise at the end.
TEXT ·gemvTAVX512(SB), NOSPLIT, $0-52
	MOVQ  a+0(FP), SI
	MOVQ  b+8(FP), DI
	MOVQ  ldb+16(FP), R8
	SHLQ  $2, R8
	MOVQ  k+24(FP), R9
	MOVQ  c+32(FP), DX
	MOVQ  n+40(FP), R10
	VBROADCASTSS alpha+48(FP), X15
	MOVQ  R9, CX
	ANDQ  $15, CX
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1 // tail lanes (none when k%16 == 0)
	MOVQ  R9, R11
	ANDQ  $-16, R11 // full vectors, in floats
	SHLQ  $2, R11   // in bytes

rows4:
	CMPQ R10, $4
	JLT  rows1
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	LEAQ (DI)(R8*1), R12
	LEAQ (R12)(R8*1), R13
	LEAQ (R13)(R8*1), R14
	XORQ BX, BX

loop4:
	CMPQ BX, R11
	JGE  tail4
	VMOVUPS (SI)(BX*1), Z4
	VFMADD231PS (DI)(BX*1), Z4, Z0
	VFMADD231PS (R12)(BX*1), Z4, Z1
	VFMADD231PS (R13)(BX*1), Z4, Z2
	VFMADD231PS (R14)(BX*1), Z4, Z3
	ADDQ $64, BX
	JMP  loop4

tail4:
	TESTQ CX, CX
	JEQ   sum4
	VMOVUPS.Z (SI)(BX*1), K1, Z4
	VMOVUPS.Z (DI)(BX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z0
	VMOVUPS.Z (R12)(BX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z1
	VMOVUPS.Z (R13)(BX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z2
	VMOVUPS.Z (R14)(BX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z3

sum4:
	// Fold 16 lanes to 8, then the four rows' 8 lanes together.
	VEXTRACTF64X4 $1, Z0, Y5
	VADDPS Y5, Y0, Y0
	VEXTRACTF64X4 $1, Z1, Y5
	VADDPS Y5, Y1, Y1
	VEXTRACTF64X4 $1, Z2, Y5
	VADDPS Y5, Y2, Y2
	VEXTRACTF64X4 $1, Z3, Y5
	VADDPS Y5, Y3, Y3
	VHADDPS Y1, Y0, Y0 // r0 r0 r1 r1 | r0 r0 r1 r1
	VHADDPS Y3, Y2, Y2 // r2 r2 r3 r3 | ...
	VHADDPS Y2, Y0, Y0 // r0 r1 r2 r3 | r0 r1 r2 r3
	VEXTRACTF128 $1, Y0, X5
	VADDPS X5, X0, X0
	VMULPS X15, X0, X0
	VADDPS (DX), X0, X0
	VMOVUPS X0, (DX)
	ADDQ $16, DX
	LEAQ (R14)(R8*1), DI
	SUBQ $4, R10
	JMP  rows4

rows1:
	TESTQ R10, R10
	JEQ   done
	VPXORD Z0, Z0, Z0
	XORQ BX, BX

loop1:
	CMPQ BX, R11
	JGE  tail1
	VMOVUPS (SI)(BX*1), Z4
	VFMADD231PS (DI)(BX*1), Z4, Z0
	ADDQ $64, BX
	JMP  loop1

tail1:
	TESTQ CX, CX
	JEQ   sum1
	VMOVUPS.Z (SI)(BX*1), K1, Z4
	VMOVUPS.Z (DI)(BX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z0

sum1:
	VEXTRACTF64X4 $1, Z0, Y5
	VADDPS Y5, Y0, Y0
	VHADDPS Y0, Y0, Y0
	VHADDPS Y0, Y0, Y0
	VEXTRACTF128 $1, Y0, X5
	VADDPS X5, X0, X0
	VMULSS X15, X0, X0
	VADDSS (DX), X0, X0
	VMOVSS X0, (DX)
	ADDQ $4, DX
	ADDQ R8, DI
	DECQ R10
	JMP  rows1

done:
	VZEROUPPER
	RET
