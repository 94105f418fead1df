package fasterrcnn

import "github.com/detlab/detlab/lib/nn"

// SetAutocast sets the precision that training forward passes (Losses)
// compute their heavy operations in: convolutions, matrix products and RoI
// features run with inputs rounded to p and float32 accumulation, while the
// weights, their gradients and the losses stay float32, as under
// torch.autocast. nn.Float32 turns autocast off (the default). Predict always
// runs in float32. See nn.Graph.WithAutocast for the list of ops and
// nn.AutocastKernels for whether the rounding is emulated on this machine.
func (m *Model) SetAutocast(p nn.Precision) { m.autocast = p }

// Autocast returns the precision set by SetAutocast.
func (m *Model) Autocast() nn.Precision { return m.autocast }
