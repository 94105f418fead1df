//go:build !amd64 || purego

package nn

// hasWinograd is false without the AVX-512 kernels: convolutions use im2col.
var hasWinograd = false

// wgMat is wgMatGo where no vector kernel exists.
func wgMat(coef []float32, r, s int, src []float32, ss int, dst []float32, ds int, n int) {
	wgMatGo(coef, r, s, src, ss, dst, ds, n)
}

func transpose16AVX512(src *float32, srcStride int, dst *float32, dstStride int) {
	panic("nn: transpose16AVX512 without AVX-512")
}

func wgStore16AVX512(src *float32, srcStride int, dst *float32, dstStride int, shift *float32, res *float32, resStride int, floor float32, mask uint16) {
	panic("nn: wgStore16AVX512 without AVX-512")
}
