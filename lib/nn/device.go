package nn

// Optional Backend extensions for device backends (lib/cuda). A backend
// whose tensors live in device memory wants every pass over them on the
// device, not only the heavy kernels of Backend; these interfaces name the
// remaining elementwise work so that operations can ask for it by type
// assertion and otherwise keep their host loops. lib/cuda's Backend
// implements both. (The operations of ops.go and autocast.go do not ask
// yet: they still run on the host, over memory the device shares.)

// ElementwiseBackend runs ReLU, the residual sum and the ReLU gradient on
// the backend, with the host loops' semantics (ReLU and AddReLU pass NaN
// on and map every other non-positive value to 0).
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
