//go:build amd64 && !purego

package nn

import "github.com/detlab/detlab/lib/compute"

// wgMat6AVX512 and wgMat4AVX512 apply a small r x 6 (r x 4) coefficient
// matrix to 6 (4) strided vectors of nblk*16 floats (winograd_amd64.s):
// the row and column passes of the Winograd transforms, 16 channels at a
// time. Strides are in bytes.
//
//go:noescape
func wgMat6AVX512(coef *float32, r int, src *float32, srcStride int, dst *float32, dstStride int, nblk int)

//go:noescape
func wgMat4AVX512(coef *float32, r int, src *float32, srcStride int, dst *float32, dstStride int, nblk int)

// hasWinograd reports whether the Winograd convolution has its vector
// kernels here (AVX-512).
var hasWinograd = compute.CPU().AVX512F

// wgMat computes dst[i*ds+c] = sum_j coef[i*s+j]*src[j*ss+c] for i < r,
// j < s (4 or 6), c < n (a multiple of 16); strides in floats. The callers
// check the slice bounds.
func wgMat(coef []float32, r, s int, src []float32, ss int, dst []float32, ds int, n int) {
	if !hasWinograd {
		wgMatGo(coef, r, s, src, ss, dst, ds, n)
		return
	}
	_ = src[(s-1)*ss+n-1]
	_ = dst[(r-1)*ds+n-1]
	if s == 6 {
		wgMat6AVX512(&coef[0], r, &src[0], ss*4, &dst[0], ds*4, n/16)
		return
	}
	wgMat4AVX512(&coef[0], r, &src[0], ss*4, &dst[0], ds*4, n/16)
}

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
