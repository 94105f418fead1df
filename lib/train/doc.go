// Package train trains detlab models: SGD with PyTorch's exact update rule,
// learning-rate schedules, gradient accumulation, loss scaling with
// torch.cuda.amp.GradScaler's semantics, gradient clipping, a history
// exported as CSV, JSON and TensorBoard event files, atomic checkpoints that
// resume exactly, and debugging aids (overfit one batch, per-layer gradient
// norms, a NaN/Inf guard naming the first bad layer).
//
// In a notebook:
//
//	model, _ := fasterrcnn.New(fasterrcnn.Defaults(ds.NumClasses()))
//	tr := train.New(train.Detector(model), train.Config{
//		LR: 0.005, Momentum: 0.9, WeightDecay: 5e-4, BatchSize: 2,
//		Schedule: train.StepLR(3, 0.1), Reporter: train.NewTerminal()})
//	hist, err := tr.Fit(ctx, ds, 6) // cancel ctx to stop; Fit again to go on
//	_, err = hist.WriteTensorBoard("runs/bccd")
//
// The trainer takes small interfaces: Model (parameters and the loss of a
// data.Batch) and data.Dataset; Detector adapts a *fasterrcnn.Model. Fit
// loads batches with a data.Loader seeded by Config.Seed.
//
// Counting: an optimizer step (a "step", one History record) consumes
// Config.AccumSteps micro-batches of Config.BatchSize images. Per-epoch
// schedules (StepLR, MultiStepLR, Cosine) read the number of completed
// epochs, per-iteration ones (Warmup, Cosine with perStep) the number of
// optimizer steps taken, as torch's scheduler.step() would be called.
//
// Mixed precision, plainly: Config.AMP turns on two things. (1) A real
// loss scaler with GradScaler's semantics: initial scale 2^16, x2 after 2000
// consecutive good steps, x0.5 and a skipped optimizer step on Inf/NaN
// gradients, gradients unscaled once per step before clipping. (2) Autocast
// in Config.Precision (bfloat16 by default, float16 on request) for models
// that implement Autocaster: with lib/nn's Graph.WithAutocast, Conv2d,
// Linear and RoIAlign multiply operands rounded to the reduced precision
// (forward and backward) with float32 accumulation; BatchNorm, activations,
// losses, all gradients, the optimizer and the master weights stay float32.
// bfloat16 runs on native kernels where the backend has them (the CPU
// backend on AVX512_BF16: VDPBF16PS); elsewhere, and for float16 on the
// CPU, the rounding is emulated on the float32 kernels - same numbers up to
// summation order, no speed-up. nn.AutocastKernels says which runs.
// *fasterrcnn.Model (through Detector) implements autocast. Trainer.Precision
// reports what a Fit actually ran in: a model without SetAutocast computes in
// float32 and gets the loss scaler only; loss scales are powers of two, so
// its AMP training then equals float32 training bit for bit.
package train
