package cuda

import "math"

// The fake device's train-mode BatchNorm kernels, written from kernels.h
// (float64 sums in element order instead of the block's tree).
func init() {
	// detlab_bn_train_stats(x, N, C, HW, gamma, beta, run_mean, run_var,
	// momentum, eps, stats, affine).
	fakeKernels["detlab_bn_train_stats"] = func(f *fakeGPU, s []uint64) error {
		I := func(i int) int { return int(int32(uint32(s[i]))) }
		n, c, hw := I(1), I(2), I(3)
		x, err := f.f32(s[0], n*c*hw)
		if err != nil {
			return err
		}
		var v [6][]float32
		for i, size := range []int{c, c, c, c, 4 * c, 2 * c} {
			j := []int{4, 5, 6, 7, 10, 11}[i]
			if v[i], err = f.f32(s[j], size); err != nil {
				return err
			}
		}
		gamma, beta, rm, rv, stats, affine := v[0], v[1], v[2], v[3], v[4], v[5]
		mom, eps := math.Float64frombits(s[8]), math.Float64frombits(s[9])
		m := float64(n * hw)
		for ch := range c {
			var sum, q float64
			for b := range n {
				for _, e := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
					sum += float64(e)
				}
			}
			mu := sum / m
			for b := range n {
				for _, e := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
					d := float64(e) - mu
					q += d * d
				}
			}
			vr := q / m
			is := 1 / math.Sqrt(vr+eps)
			rm[ch] = float32((1-mom)*float64(rm[ch]) + mom*mu)
			rv[ch] = float32((1-mom)*float64(rv[ch]) + mom*vr*(m/(m-1)))
			stats[ch], stats[2*c+ch] = float32(mu), float32(is)
			stats[c+ch], stats[3*c+ch] = float32(mu-float64(stats[ch])), float32(is-float64(stats[2*c+ch]))
			k := float64(gamma[ch]) * is
			affine[ch], affine[c+ch] = float32(k), float32(float64(beta[ch])-mu*k)
		}
		return nil
	}
	// detlab_bn_backward_sums(x, y, dy, stats, gamma, N, C, HW, relu,
	// dgamma, dbeta, coef) and detlab_bn_backward_dx(x, y, dy, stats,
	// coef, dx, N, C, HW, relu).
	fakeKernels["detlab_bn_backward_sums"] = func(f *fakeGPU, s []uint64) error {
		I := func(i int) int { return int(int32(uint32(s[i]))) }
		n, c, hw, relu := I(5), I(6), I(7), I(8) != 0
		total := n * c * hw
		var v [5][]float32
		for i, size := range []int{total, total, total, 4 * c, c} {
			var err error
			if v[i], err = f.f32(s[i], size); err != nil {
				return err
			}
		}
		dg, err := f.f32(s[9], c)
		if err != nil {
			return err
		}
		db, err := f.f32(s[10], c)
		if err != nil {
			return err
		}
		coef, err := f.f64(s[11], 3*c)
		if err != nil {
			return err
		}
		x, y, dy, stats, gamma := v[0], v[1], v[2], v[3], v[4]
		m := float64(n * hw)
		for ch := range c {
			mu, is := fakeBNStat(stats, c, ch, 0), fakeBNStat(stats, c, ch, 2)
			var sdy, sdyx float64
			for b := range n {
				for i := (b*c + ch) * hw; i < (b*c+ch+1)*hw; i++ {
					d := float64(fakeBNGrad(dy, y, i, relu))
					sdy += d
					sdyx += d * (float64(x[i]) - mu)
				}
			}
			sdyx *= is
			if dg != nil {
				dg[ch] += float32(sdyx)
			}
			if db != nil {
				db[ch] += float32(sdy)
			}
			coef[ch] = 0
			if gamma != nil {
				coef[ch] = float64(gamma[ch]) * is
			}
			coef[c+ch], coef[2*c+ch] = sdy/m, sdyx/m
		}
		return nil
	}
	fakeKernels["detlab_bn_backward_dx"] = func(f *fakeGPU, s []uint64) error {
		I := func(i int) int { return int(int32(uint32(s[i]))) }
		n, c, hw, relu := I(6), I(7), I(8), I(9) != 0
		total := n * c * hw
		var v [4][]float32
		for i, size := range []int{total, total, total, 4 * c} {
			var err error
			if v[i], err = f.f32(s[i], size); err != nil {
				return err
			}
		}
		coef, err := f.f64(s[4], 3*c)
		if err != nil {
			return err
		}
		dx, err := f.f32(s[5], total)
		if err != nil {
			return err
		}
		x, y, dy, stats := v[0], v[1], v[2], v[3]
		for i := range total {
			ch := i / hw % c
			mu, is := fakeBNStat(stats, c, ch, 0), fakeBNStat(stats, c, ch, 2)
			xhat := (float64(x[i]) - mu) * is
			dx[i] += float32(coef[ch] * (float64(fakeBNGrad(dy, y, i, relu)) - coef[c+ch] - xhat*coef[2*c+ch]))
		}
		return nil
	}
}

// fakeBNStat is the float64 statistic whose float32 pair starts at
// stats[at*c] (at 0: the mean, 2: invstd).
func fakeBNStat(stats []float32, c, ch, at int) float64 {
	return float64(stats[at*c+ch]) + float64(stats[(at+1)*c+ch])
}

// fakeBNGrad is dy[i], or +0 with relu where y[i] is not positive.
func fakeBNGrad(dy, y []float32, i int, relu bool) float32 {
	if relu && !(y[i] > 0) {
		return 0
	}
	return dy[i]
}
