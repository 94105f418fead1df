package cuda

import "github.com/detlab/detlab/lib/nn"

// Conv2dFused implements nn.FusedConvBackend, so that lib/nn's ConvBN
// (a convolution followed by a folded or frozen BatchNorm, the residual
// sum and the ReLU of a ResNet block) runs on the device as the
// convolution's products (those of Conv2d: float32 cuBLAS, or natively
// in bfloat16 / float16 under autocast) and then ONE epilogue kernel,
// detlab_conv_epilogue, over the output:
//
//	y = relu(conv(x, w)*Scale[k] + Shift[k] + Residual)
//
// with lib/nn's arithmetic (the product and the shift rounded separately,
// then the residual; a nil Scale is 1 and a nil Shift 0, a nil Residual is
// not added; the ReLU passes NaN and maps -0 to +0), in float32 on the
// float32 accumulated product whatever geo.Precision is, as torch's
// autocast runs batch norm. The result equals Conv2d followed by
// ChannelAffine and Add bit for bit, with two to three fewer passes over
// y. ep.Residual must not alias y. The Scratch is not used.
func (b *Backend) Conv2dFused(geo nn.ConvGeom, x, w []float32, ep nn.ConvEpilogue, y []float32, _ nn.Scratch) {
	ckk, chw, out := geo.C*geo.KH*geo.KW, geo.C*geo.H*geo.W, geo.N*geo.K*geo.OH*geo.OW
	xs := need("Conv2dFused", "x", x, geo.N*chw)
	ws := need("Conv2dFused", "w", w, geo.K*ckk)
	ys := need("Conv2dFused", "y", y, out)
	scale, shift, res := ep.Scale, ep.Shift, ep.Residual
	if scale != nil {
		scale = need("Conv2dFused", "scale", scale, geo.K)
	}
	if shift != nil {
		shift = need("Conv2dFused", "shift", shift, geo.K)
	}
	if res != nil {
		res = need("Conv2dFused", "residual", res, out)
	}
	if len(ys) == 0 {
		return
	}
	b.run("Conv2dFused", func(s *scope) {
		py := s.f32(ys, write)
		b.convProducts(s, geo, xs, ws, py)
		s.epilogue(geo, py, scale, shift, res, ep.ReLU)
	})
}

// epilogue launches detlab_conv_epilogue on the device output py (N,K,
// OH*OW); a nil scale, shift or residual is passed as NULL.
func (s *scope) epilogue(geo nn.ConvGeom, py uint64, scale, shift, res []float32, relu bool) {
	ohw := geo.OH * geo.OW
	ps, pt, pr := s.f32(scale, read), s.f32(shift, read), s.f32(res, read)
	s.launch("detlab_conv_epilogue", gridFor(geo.N*geo.K*ohw), pArg(py), pArg(ps), pArg(pt), pArg(pr),
		iArg(geo.N), iArg(geo.K), iArg(ohw), bArg(relu))
}
