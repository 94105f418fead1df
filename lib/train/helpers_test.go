package train

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math/rand"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/nn"
)

// toyData is a tiny deterministic dataset: n random size x size images,
// each with one box.
type toyData struct {
	samples []data.Sample
}

func newToyData(n, size int, seed int64) *toyData {
	rng := rand.New(rand.NewSource(seed))
	d := &toyData{}
	for i := 0; i < n; i++ {
		img := image.NewRGBA(image.Rect(0, 0, size, size))
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				img.Set(x, y, color.RGBA{uint8(rng.Intn(256)), uint8(rng.Intn(256)), uint8(rng.Intn(256)), 255})
			}
		}
		x1, y1 := rng.Float32()*float32(size)/2, rng.Float32()*float32(size)/2
		b := box.Box{X1: x1, Y1: y1, X2: x1 + 1 + rng.Float32()*float32(size)/2, Y2: y1 + 1 + rng.Float32()*float32(size)/2}
		d.samples = append(d.samples, data.Sample{ID: fmt.Sprint(i), Image: img, Width: size, Height: size,
			Boxes: []box.Box{b}, Labels: []int{1 + i%2}})
	}
	return d
}

func (d *toyData) Len() int                          { return len(d.samples) }
func (d *toyData) Sample(i int) (data.Sample, error) { return d.samples[i], nil }
func (d *toyData) Classes() []string                 { return []string{data.Background, "a", "b"} }

// linModel regresses the normalised first box from the pixels: a linear
// layer W (4 x 3*size*size) and b (4); the loss is the batch mean of the
// squared error, split into "loss_xy1" and "loss_xy2" (the two corners).
type linModel struct {
	w, b *nn.Param
	in   int
	// nanAt, when >= 0, makes the loss NaN at that forward pass.
	calls, nanAt int
	// rng, once SeedSampler set it, drops one random output from each
	// sample's loss (random sampling, as the detector's samplers).
	rng *rand.Rand
}

func (m *linModel) SeedSampler(seed int64) { m.rng = rand.New(rand.NewSource(seed)) }

func newLinModel(size int, seed int64) *linModel {
	in := 3 * size * size
	m := &linModel{w: nn.NewParam("fc.weight", 4, in), b: nn.NewParam("fc.bias", 4), in: in, nanAt: -1}
	rng := rand.New(rand.NewSource(seed))
	nn.Uniform(m.w.Value, -0.05, 0.05, rng)
	nn.Uniform(m.b.Value, -0.05, 0.05, rng)
	return m
}

func (m *linModel) Params() []*nn.Param { return []*nn.Param{m.w, m.b} }

type linLoss struct {
	m      *linModel
	xs     [][]float32
	res    [][]float32
	values map[string]float32
}

func (m *linModel) Loss(ctx context.Context, b data.Batch) (Loss, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	imgs, err := b.Images()
	if err != nil {
		return nil, err
	}
	l := &linLoss{m: m, values: map[string]float32{}}
	w, bias := m.w.Value.Data(), m.b.Value.Data()
	var s1, s2 float32
	for i, img := range imgs {
		x := img.Data()
		if len(x) != m.in {
			return nil, fmt.Errorf("image has %d values, model takes %d", len(x), m.in)
		}
		s := b.Samples[i]
		bx := s.Boxes[0]
		fw, fh := float32(s.Width), float32(s.Height)
		y := []float32{bx.X1 / fw, bx.Y1 / fh, bx.X2 / fw, bx.Y2 / fh}
		r := make([]float32, 4)
		for o := 0; o < 4; o++ {
			acc := bias[o]
			for j, v := range x {
				acc += w[o*m.in+j] * v
			}
			r[o] = acc - y[o]
		}
		if m.rng != nil {
			r[m.rng.Intn(4)] = 0
		}
		s1 += r[0]*r[0] + r[1]*r[1]
		s2 += r[2]*r[2] + r[3]*r[3]
		l.xs = append(l.xs, x)
		l.res = append(l.res, r)
	}
	n := float32(len(imgs))
	l.values["loss_xy1"], l.values["loss_xy2"] = s1/n, s2/n
	l.values["loss"] = s1/n + s2/n
	if m.calls == m.nanAt {
		l.values["loss"] = float32(nanF())
	}
	m.calls++
	return l, nil
}

func nanF() float64 { var z float64; return z / z }

func (l *linLoss) Values() map[string]float32 {
	out := map[string]float32{}
	for k, v := range l.values {
		out[k] = v
	}
	return out
}

func (l *linLoss) Backward(scale float32) error {
	m := l.m
	if m.w.Grad == nil {
		m.w.Grad = m.w.Value.Clone()
		nn.Fill(m.w.Grad, 0)
		m.b.Grad = m.b.Value.Clone()
		nn.Fill(m.b.Grad, 0)
	}
	gw, gb := m.w.Grad.Data(), m.b.Grad.Data()
	c := scale * 2 / float32(len(l.xs))
	for i, x := range l.xs {
		for o := 0; o < 4; o++ {
			d := c * l.res[i][o]
			gb[o] += d
			row := gw[o*m.in : (o+1)*m.in]
			for j, v := range x {
				row[j] += d * v
			}
		}
	}
	return nil
}

func paramsCopy(ps []*nn.Param) [][]float32 {
	out := make([][]float32, len(ps))
	for i, p := range ps {
		out[i] = append([]float32(nil), p.Value.Data()...)
	}
	return out
}

func maxAbsDiff(a, b [][]float32) float64 {
	var m float64
	for i := range a {
		for j := range a[i] {
			d := float64(a[i][j]) - float64(b[i][j])
			if d < 0 {
				d = -d
			}
			if d > m {
				m = d
			}
		}
	}
	return m
}

// noSampler hides linModel's SeedSampler: every forward pass uses all
// outputs, so different batchings see the same losses.
type noSampler struct{ m *linModel }

func (n noSampler) Params() []*nn.Param { return n.m.Params() }
func (n noSampler) Loss(ctx context.Context, b data.Batch) (Loss, error) {
	return n.m.Loss(ctx, b)
}
