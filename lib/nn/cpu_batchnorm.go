package nn

// ChannelStats implements Backend with a two-pass float64 mean and biased
// variance per channel.
func (CPU) ChannelStats(x []float32, n, c, hw int, mean, variance []float64) {
	m := float64(n * hw)
	parallelFor(c, func(c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			var s float64
			for b := 0; b < n; b++ {
				for _, v := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
					s += float64(v)
				}
			}
			mu := s / m
			var q float64
			for b := 0; b < n; b++ {
				for _, v := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
					d := float64(v) - mu
					q += d * d
				}
			}
			mean[ch], variance[ch] = mu, q/m
		}
	})
}

// ChannelAffine implements Backend.
func (CPU) ChannelAffine(x, y []float32, n, c, hw int, scale, shift []float32, relu bool) {
	parallelFor(n*c, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			ch := p % c
			s, t := scale[ch], shift[ch]
			src, dst := x[p*hw:(p+1)*hw], y[p*hw:(p+1)*hw]
			if relu {
				for i, v := range src {
					o := v*s + t
					if !(o > 0) && o == o { // NaN propagates
						o = 0
					}
					dst[i] = o
				}
				continue
			}
			for i, v := range src {
				dst[i] = v*s + t
			}
		}
	})
}
