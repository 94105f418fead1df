package nn

import "github.com/detlab/detlab/lib/internal/freelist"

// ChannelStats implements Backend with a two-pass float64 mean and biased
// variance per channel.
func (CPU) ChannelStats(x []float32, n, c, hw int, mean, variance []float64) {
	runPooled(c, &channelStatsJobs, channelStatsJob{x: x, n: n, c: c, hw: hw, mean: mean, variance: variance})
}

// channelStatsJob is ChannelStats over channels [c0, c1).
type channelStatsJob struct {
	x              []float32
	n, c, hw       int
	mean, variance []float64
}

var channelStatsJobs freelist.List[channelStatsJob]

func (j *channelStatsJob) run(c0, c1 int) {
	x, n, c, hw := j.x, j.n, j.c, j.hw
	m := float64(n * hw)
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
		j.mean[ch], j.variance[ch] = mu, q/m
	}
}

// ChannelAffine implements Backend.
func (CPU) ChannelAffine(x, y []float32, n, c, hw int, scale, shift []float32, relu bool) {
	runPooled(n*c, &channelAffineJobs, channelAffineJob{x: x, y: y, c: c, hw: hw, scale: scale, shift: shift, relu: relu})
}

// channelAffineJob is ChannelAffine over planes [p0, p1).
type channelAffineJob struct {
	x, y         []float32
	c, hw        int
	scale, shift []float32
	relu         bool
}

var channelAffineJobs freelist.List[channelAffineJob]

func (j *channelAffineJob) run(p0, p1 int) {
	c, hw := j.c, j.hw
	for p := p0; p < p1; p++ {
		ch := p % c
		s, t := j.scale[ch], j.shift[ch]
		src, dst := j.x[p*hw:(p+1)*hw], j.y[p*hw:(p+1)*hw]
		if j.relu {
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
}
