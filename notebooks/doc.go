// Package notebooks holds detlab's example notebooks and the tests that keep
// them runnable: every notebook here must execute top to bottom, headless,
// with `detlab run` (TestNotebooksRun, in process through kernel/nbrun) and
// with `jupyter nbconvert --execute` (TestNotebooksNbconvert), and must be
// committed with its outputs cleared (TestNotebooksFormat).
//
// The notebooks are:
//
//   - quickstart.ipynb: synthetic shapes, a small Faster R-CNN, live
//     progress, loss curves, detections and COCO evaluation;
//   - quickstart_gpu.ipynb: the same with cfg.Device = "cuda:0", after a
//     cell printing cuda.Probe() (without a GPU it says why and runs on the
//     CPU), plus the model's GPU memory;
//   - head_tweaking.ipynb: a box head written in a cell, trained, edited,
//     re-run and compared;
//   - anchors.ipynb: anchor coverage (BCCD when ../shared/data is present),
//     a k-means suggestion and a retraining with it;
//   - amp_accumulation.ipynb: the loss-scale curve, an injected overflow
//     being skipped, and gradient-accumulation equivalence.
//
// Each has a cell tagged "parameters"; the tests shrink them with
// nbrun.InjectParameters, as `detlab run -p name=value` does.
package notebooks
