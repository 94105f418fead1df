package nn

// Optional Backend extensions for device backends (lib/cuda). A backend
// whose tensors live in device memory wants every pass over them on the
// device, not only the heavy kernels of Backend; these interfaces name the
// remaining elementwise work so that operations can ask for it by type
// assertion and otherwise keep their host loops. lib/cuda's Backend
// implements both. ReLU, Add and AddReLU (forward and backward) use
// ElementwiseBackend when the graph's backend has it; autocast rounding
// goes through Graph.round, which uses RoundingBackend. BatchNorm's
// train-mode backward still runs on the host.

// ElementwiseBackend runs ReLU, the residual sum and the ReLU gradient on
// the backend, with the host loops' semantics (ReLU and AddReLU pass NaN
// on and map every other non-positive value, -0 included, to +0).
type ElementwiseBackend interface {
	// Add writes y = a + b, then max(y, 0) when relu, over len(y)
	// elements; y may alias a or b.
	Add(a, b, y []float32, relu bool)
	// ReLU writes y = max(x, 0) over len(y) elements; y may alias x.
	ReLU(x, y []float32)
	// ReLUBackward adds dy into dx where the ReLU output y is positive,
	// over len(dx) elements.
	ReLUBackward(y, dy, dx []float32)
}

// RoundingBackend rounds to an autocast precision on the backend: Round is
// Precision.RoundSlice (dst may alias src).
type RoundingBackend interface {
	Round(p Precision, dst, src []float32)
}

// elementwise returns g's backend as an ElementwiseBackend, or nil when it
// has none (the host loops run).
func (g *Graph) elementwise() ElementwiseBackend {
	eb, _ := g.backend.(ElementwiseBackend)
	return eb
}

// round writes src rounded to g's autocast precision into dst (len(dst) >=
// len(src); dst may alias src): on the backend when it implements
// RoundingBackend, else Precision.RoundSlice on the host.
func (g *Graph) round(dst, src []float32) { g.roundAs(g.autocast, dst, src) }

// roundAs is round to precision p (a backward pass rounds to the
// precision its forward pass captured).
func (g *Graph) roundAs(p Precision, dst, src []float32) {
	if p == Float32 {
		copy(dst, src)
		return
	}
	if rb, ok := g.backend.(RoundingBackend); ok {
		rb.Round(p, dst, src)
		return
	}
	p.RoundSlice(dst, src)
}
