//go:build amd64 && !purego

package nn

import "github.com/detlab/detlab/lib/compute"

// wgIn6AVX512 and wgIn4AVX512 are F(4,3)'s and F(2,3)'s input transforms
// of one tile, wgOut6AVX512 and wgOut4AVX512 their output transforms
// (winograd_amd64.s; see wgInTile and wgOutTile). Strides are in bytes.
//
//go:noescape
func wgIn6AVX512(src *float32, rowStride, colStride int, dst *float32, dstStride int, tmp *float32, nblk int)

//go:noescape
func wgIn4AVX512(src *float32, rowStride, colStride int, dst *float32, dstStride int, tmp *float32, nblk int)

//go:noescape
func wgOut6AVX512(src *float32, srcStride int, dst *float32, rowStride, colStride int, tmp *float32, nblk int)

//go:noescape
func wgOut4AVX512(src *float32, srcStride int, dst *float32, rowStride, colStride int, tmp *float32, nblk int)

// hasWinograd reports whether the Winograd convolution has its vector
// kernels here (AVX-512).
var hasWinograd = compute.CPU().AVX512F

// transpose16AVX512 writes the transpose of the 16 x 16 block at src into
// dst (strides in bytes).
//
//go:noescape
func transpose16AVX512(src *float32, srcStride int, dst *float32, dstStride int)

// wgStore16AVX512 is transpose16AVX512 with the epilogue: dst row j =
// max(floor, column j + shift[j] + res row j) (strides in bytes; a
// resStride of 0 repeats one row), columns limited to the lanes of mask.
//
//go:noescape
func wgStore16AVX512(src *float32, srcStride int, dst *float32, dstStride int, shift *float32, res *float32, resStride int, floor float32, mask uint16)
