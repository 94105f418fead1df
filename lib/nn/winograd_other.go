//go:build !amd64 || purego

package nn

// hasWinograd is false without the AVX-512 kernels: convolutions use im2col.
var hasWinograd = false

func wgIn6AVX512(src *float32, rowStride, colStride int, dst *float32, dstStride int, tmp *float32, nblk int) {
	panic("nn: wgIn6AVX512 without AVX-512")
}

func wgIn4AVX512(src *float32, rowStride, colStride int, dst *float32, dstStride int, tmp *float32, nblk int) {
	panic("nn: wgIn4AVX512 without AVX-512")
}

func wgOut6AVX512(src *float32, srcStride int, dst *float32, rowStride, colStride int, tmp *float32, nblk int) {
	panic("nn: wgOut6AVX512 without AVX-512")
}

func wgOut4AVX512(src *float32, srcStride int, dst *float32, rowStride, colStride int, tmp *float32, nblk int) {
	panic("nn: wgOut4AVX512 without AVX-512")
}

func transpose16AVX512(src *float32, srcStride int, dst *float32, dstStride int) {
	panic("nn: transpose16AVX512 without AVX-512")
}

func wgStore16AVX512(src *float32, srcStride int, dst *float32, dstStride int, shift *float32, res *float32, resStride int, floor float32, mask uint16) {
	panic("nn: wgStore16AVX512 without AVX-512")
}
