package cuda

import "github.com/detlab/detlab/lib/nn"

// BatchNormBackward implements nn.BatchNormBackend with the existing
// kernels and cuBLAS, in two device passes:
//
//  1. xc = x - mean (detlab_channel_affine), dbeta's sums of dy
//     (detlab_channel_sum_add, float64 within a channel) and the sums of
//     dy*xc per channel as the diagonal of D = sum over images of
//     DY_n XC_n^T (one C x C GEMM per image), read out by detlab_im2col
//     viewing D as a C x (C+1) image whose column 0 is the diagonal.
//  2. dx += k*dy - k*mean(dy) - (k*invstd*mean(dy*xhat))*xc, k =
//     gamma*invstd (two channel affines and two adds), or dx += k*dy with
//     running statistics.
//
// The per-channel scalars between the passes are computed on the host in
// float64, the mean's float32 rounding in xc corrected there. The dy*xc
// sums run in float32 inside the GEMM (the host loop's are float64), so
// results agree with nn's to float32 summation order, not bit for bit.
func (b *Backend) BatchNormBackward(x, dy, dx, dgamma, dbeta []float32, n, c, hw int, mean, invstd []float64, gamma []float32, train bool) {
	const op = "BatchNormBackward"
	total := n * c * hw
	dys := need(op, "dy", dy, total)
	if dx != nil {
		dx = need(op, "dx", dx, total)
		gamma = need(op, "gamma", gamma, c)
	}
	if dgamma != nil {
		dgamma = need(op, "dgamma", dgamma, c)
	}
	if dbeta != nil {
		dbeta = need(op, "dbeta", dbeta, c)
	}
	if len(mean) < c || len(invstd) < c {
		panic(&OpError{Op: op, Err: errShort("mean or invstd", min(len(mean), len(invstd)), c)})
	}
	if total == 0 || (dx == nil && dgamma == nil && dbeta == nil) {
		return
	}
	sums := train || dgamma != nil || dbeta != nil
	if sums {
		x = need(op, "x", x, total)
	}
	// shift[ch] = -mean rounded to float32; ones[ch] = 1.
	ones, negMean := make([]float32, c), make([]float32, c)
	for ch := range c {
		ones[ch], negMean[ch] = 1, float32(-mean[ch])
	}
	sdy, sdxc := make([]float32, c), make([]float32, c)
	if sums {
		b.run(op, func(s *scope) {
			px, pdy := s.f32(x, read), s.f32(dys, read)
			pOnes, pShift := s.f32(ones, read), s.f32(negMean, read)
			xc := s.temp(4 * total)
			s.launch("detlab_channel_affine", gridFor(total), pArg(px), pArg(xc), iArg(n), iArg(c), iArg(hw), pArg(pOnes), pArg(pShift), bArg(false))
			ps := s.f32(sdy, readWrite)
			s.launch("detlab_channel_sum_add", channelGrid(c), pArg(pdy), pArg(ps), iArg(n), iArg(c), iArg(hw))
			d := s.temp(4 * c * (c + 1)) // C x C, with room for the C x (C+1) view

			for img := range n {
				beta := float32(1)
				if img == 0 {
					beta = 0
				}
				s.gemm(false, true, c, c, hw, 1, at(pdy, img*c*hw), hw, at(xc, img*c*hw), hw, beta, d, c)
			}
			// D's diagonal: element (r, 0) of D viewed as C rows of C+1.
			pd := s.f32(sdxc, write)
			s.launch("detlab_im2col", gridFor(c), pArg(d), pArg(pd), iArg(1), iArg(c), iArg(c+1),
				iArg(1), iArg(1), iArg(1), iArg(1), iArg(0), iArg(0), iArg(c), iArg(1))
		})
	}
	m := float64(n * hw)
	scale, shift, xcScale := make([]float32, c), make([]float32, c), make([]float32, c)
	for ch := range c {
		is := invstd[ch]
		sy := float64(sdy[ch])
		// sum dy*(x-mean) = sum dy*xc + sum dy*(float32(mean) - mean).
		syx := (float64(sdxc[ch]) + sy*(-float64(negMean[ch])-mean[ch])) * is
		if dgamma != nil {
			dgamma[ch] += float32(syx)
		}
		if dbeta != nil {
			dbeta[ch] += float32(sy)
		}
		if dx == nil {
			continue
		}
		k := float64(gamma[ch]) * is
		scale[ch] = float32(k)
		if train {
			shift[ch] = float32(-k * sy / m)
			xcScale[ch] = float32(-k * is * syx / m)
		}
	}
	if dx == nil {
		return
	}
	b.run(op, func(s *scope) {
		pdy, pdx := s.f32(dys, read), s.f32(dx, readWrite)
		t := s.temp(4 * total)
		ps, pt := s.f32(scale, read), s.f32(shift, read)
		s.launch("detlab_channel_affine", gridFor(total), pArg(pdy), pArg(t), iArg(n), iArg(c), iArg(hw), pArg(ps), pArg(pt), bArg(false))
		s.launch("detlab_add", gridFor(total), pArg(pdx), pArg(t), pArg(pdx), iArg(total), bArg(false))
		if !train {
			return
		}
		px := s.f32(x, read)
		pOnes, pShift := s.f32(ones, read), s.f32(negMean, read)
		pxs, zero := s.f32(xcScale, read), s.f32(make([]float32, c), read)
		s.launch("detlab_channel_affine", gridFor(total), pArg(px), pArg(t), iArg(n), iArg(c), iArg(hw), pArg(pOnes), pArg(pShift), bArg(false))
		s.launch("detlab_channel_affine", gridFor(total), pArg(t), pArg(t), iArg(n), iArg(c), iArg(hw), pArg(pxs), pArg(zero), bArg(false))
		s.launch("detlab_add", gridFor(total), pArg(pdx), pArg(t), pArg(pdx), iArg(total), bArg(false))
	})
}

var _ nn.BatchNormBackend = (*Backend)(nil)

// BatchNormTrainForward implements nn.BatchNormTrainBackend: one
// detlab_bn_train_stats kernel (one block per channel: two-pass float64
// mean and variance, then invstd, the running statistics, stats and the
// affine coefficients in lib/nn's float64 arithmetic) and one
// detlab_channel_affine. Nothing comes back to the host: the operation
// stays queued.
func (b *Backend) BatchNormTrainForward(x, y []float32, n, c, hw int, gamma, beta, runningMean, runningVar, stats []float32, momentum, eps float64, relu bool) {
	const op = "BatchNormTrainForward"
	total := n * c * hw
	xs, ys := need(op, "x", x, total), need(op, "y", y, total)
	gamma, beta = need(op, "gamma", gamma, c), need(op, "beta", beta, c)
	runningMean, runningVar = need(op, "runningMean", runningMean, c), need(op, "runningVar", runningVar, c)
	stats = need(op, "stats", stats, nn.BatchNormStatsPerChannel*c)
	if total == 0 {
		return
	}
	b.run(op, func(s *scope) {
		px, py := s.f32(xs, read), s.f32(ys, write)
		pg, pb := s.f32(gamma, read), s.f32(beta, read)
		prm, prv := s.f32(runningMean, readWrite), s.f32(runningVar, readWrite)
		pst := s.f32(stats, write)
		affine := s.temp(4 * 2 * c)
		s.launch("detlab_bn_train_stats", channelGrid(c), pArg(px), iArg(n), iArg(c), iArg(hw), pArg(pg), pArg(pb),
			pArg(prm), pArg(prv), dArg(momentum), dArg(eps), pArg(pst), pArg(affine))
		s.launch("detlab_channel_affine", gridFor(total), pArg(px), pArg(py), iArg(n), iArg(c), iArg(hw),
			pArg(affine), pArg(at(affine, c)), bArg(relu))
	})
}

// BatchNormTrainBackward implements nn.BatchNormTrainBackend: one
// detlab_bn_backward_sums kernel (per channel float64 sums, dgamma and
// dbeta, three float64 coefficients in a device temp) and, with dx, one
// detlab_bn_backward_dx. Nothing comes back to the host.
func (b *Backend) BatchNormTrainBackward(x, y, dy, dx, dgamma, dbeta []float32, n, c, hw int, stats, gamma []float32, relu bool) {
	const op = "BatchNormTrainBackward"
	total := n * c * hw
	if dx == nil && dgamma == nil && dbeta == nil {
		return
	}
	xs, dys := need(op, "x", x, total), need(op, "dy", dy, total)
	if relu {
		y = need(op, "y", y, total)
	} else {
		y = nil
	}
	if dx != nil {
		dx = need(op, "dx", dx, total)
		gamma = need(op, "gamma", gamma, c)
	} else {
		gamma = nil
	}
	if dgamma != nil {
		dgamma = need(op, "dgamma", dgamma, c)
	}
	if dbeta != nil {
		dbeta = need(op, "dbeta", dbeta, c)
	}
	stats = need(op, "stats", stats, nn.BatchNormStatsPerChannel*c)
	if total == 0 {
		return
	}
	b.run(op, func(s *scope) {
		px, py, pdy := s.f32(xs, read), s.f32(y, read), s.f32(dys, read)
		pst, pg := s.f32(stats, read), s.f32(gamma, read)
		pdg, pdb := s.f32(dgamma, readWrite), s.f32(dbeta, readWrite)
		coef := s.temp(8 * 3 * c)
		s.launch("detlab_bn_backward_sums", channelGrid(c), pArg(px), pArg(py), pArg(pdy), pArg(pst), pArg(pg),
			iArg(n), iArg(c), iArg(hw), bArg(relu), pArg(pdg), pArg(pdb), pArg(coef))
		if dx == nil {
			return
		}
		pdx := s.f32(dx, readWrite)
		s.launch("detlab_bn_backward_dx", gridFor(total), pArg(px), pArg(py), pArg(pdy), pArg(pst), pArg(coef), pArg(pdx),
			iArg(n), iArg(c), iArg(hw), bArg(relu))
	})
}

var _ nn.BatchNormTrainBackend = (*Backend)(nil)
