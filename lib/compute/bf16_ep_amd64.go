//go:build amd64 && !purego

package compute

// Implemented in bf16_ep_amd64.s.
//
//go:noescape
func bf16EpRows32(c *float32, ldc int, scale, shift, res *float32, ldr int, floor float32, rows int)

// onesTile backs the scale of epilogues without one.
var onesTile = [16]float32{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}

// bf16AsmEpRows32 applies ep to rows [row, row+h) (h <= 16), columns
// [col, col+32) of C with bf16EpRows32, after checking every slice.
func bf16AsmEpRows32(c []float32, ldc, row, col, h int, ep *Epilogue) {
	off := row*ldc + col
	_ = c[off+(h-1)*ldc+31]
	scale, shift, res, ldr := &onesTile[0], &zeroTile[0], &zeroTile[0], 0
	if ep.Scale != nil {
		scale = &ep.Scale[row : row+h][0]
	}
	if ep.Shift != nil {
		shift = &ep.Shift[row : row+h][0]
	}
	if ep.Residual != nil {
		ro := row*ep.LdResidual + col
		_ = ep.Residual[ro+(h-1)*ep.LdResidual+31]
		res, ldr = &ep.Residual[ro], 4*ep.LdResidual
	}
	floor := negInf
	if ep.ReLU {
		floor = 0
	}
	bf16EpRows32(&c[off], ldc, scale, shift, res, ldr, floor, h)
}

func init() {
	if hasAVX512F() {
		bf16EpRows32N = bf16AsmEpRows32
	}
}
