//go:build amd64 && !purego

package nn

import "github.com/detlab/detlab/lib/compute"

// maxRows3KeysAVX512 writes dst[i] = key(max(a[i], b[i], c[i])) for
// i < n (n >= 1) and returns nonzero when an input is a NaN; the key is
// the float's bits with the low 31 flipped when negative, so that signed
// order is float order with -0 < +0 (maxpool_amd64.s).
//
//go:noescape
func maxRows3KeysAVX512(a, b, c *float32, dst *int32, n int) (nan int)

// maxCols3AVX512 writes out[j] = unkey(max(keys[2j], keys[2j+1],
// keys[2j+2])) for j < n (n >= 1), reading keys up to index
// 32*ceil(n/16); idx is maxPoolLanes (maxpool_amd64.s).
//
//go:noescape
func maxCols3AVX512(keys *int32, out *float32, n int, idx *int32)

// hasMaxPoolAVX512 reports whether maxPool3s2Fast has its kernels.
var hasMaxPoolAVX512 = compute.CPU().AVX512F

// maxPoolKeyBuf is the stack key row of maxPool3s2Job: planes up to
// 2048 wide; wider ones allocate theirs.
const maxPoolKeyBuf = 32*64 + 1

// maxPoolLanes holds the VPERMT2D indexes of the even then the odd lanes
// of a pair of 16-lane vectors.
var maxPoolLanes = [32]int32{
	0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
	1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
}

// maxPool3s2Fast pools one plane as maxPool3s2 does, with AVX-512: per
// output row, the vertical maximum of its three input rows (the padding
// row above the first repeats row 0, which cannot change a maximum) as
// order keys into keys[1:W+1], between -inf sentinels, then the
// horizontal 3-wide stride-2 maximum of those keys. Integer order on the
// keys makes every result bit-identical to the Go builtin max's, which
// prefers +0 to -0; a NaN, whose payload the builtin decides, makes it
// report false (out is then partly written) for the caller's Go path, as
// do a missing CPU feature, a short keys or an unexpected geometry.
func maxPool3s2Fast(geo PoolGeom, plane, out []float32, keys []int32) bool {
	h, w, oh, ow := geo.H, geo.W, geo.OH, geo.OW
	if !hasMaxPoolAVX512 || h < 1 || w < 1 || oh != (h-1)/2+1 || ow != (w-1)/2+1 {
		return false
	}
	n := maxPoolKeyLen(ow)
	if len(keys) < n || len(plane) < h*w || len(out) < oh*ow {
		return false
	}
	keys = keys[:n]
	keys[0] = maxPoolKeyMin
	for i := w + 1; i < n; i++ {
		keys[i] = maxPoolKeyMin
	}
	for r := 0; r < oh; r++ {
		r1 := 2 * r
		r0, r2 := max(r1-1, 0), min(r1+1, h-1)
		if maxRows3KeysAVX512(&plane[r0*w], &plane[r1*w], &plane[r2*w], &keys[1], w) != 0 {
			return false
		}
		maxCols3AVX512(&keys[0], &out[r*ow], ow, &maxPoolLanes[0])
	}
	return true
}
