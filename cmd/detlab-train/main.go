// Command detlab-train trains Faster R-CNN with the ResNet18 body on a
// Pascal VOC dataset (BCCD by default) or on the built-in synthetic shapes,
// with the recipe of the article detlab's users come from as its defaults,
// then evaluates it with COCO's metrics on the test split.
//
//	go run ./cmd/detlab-train                       # BCCD, 6 epochs, the article's recipe
//	go run ./cmd/detlab-train -resume               # continue a stopped run from out/bccd
//	go run ./cmd/detlab-train -data shapes -epochs 2
//	go run ./cmd/detlab-train -max-iters 10 -limit 20 -eval-limit 10   # a smoke run
//
// The recipe: SGD with learning rate 0.005, momentum 0.9 and weight decay
// 5e-4, StepLR(3, 0.1) stepped per epoch, batches of 2, horizontal flips,
// images resized to a shorter side of 320 and a longer side of at most 427,
// anchors 32-512 x 0.5/1/2 on the single stride-32 feature map, 6 epochs on
// the trainval split, evaluation on test; torchvision 0.14's other
// Faster R-CNN numbers (lib/fasterrcnn.Defaults).
//
// Initialisation: no ImageNet weights are reachable here, so the backbone
// starts from torchvision's random initialisation. For that case
// torchvision's builders pass is_trained=False to _validate_trainable_layers,
// which makes every stage trainable (5), and only use FrozenBatchNorm2d when
// the weights are trained; the article builds its body from resnet18's
// children, whose BatchNorms are ordinary. So by default all five stages
// train and the BatchNorms use batch statistics in training (running
// statistics at evaluation). With -weights FILE (a torchvision resnet18
// .pth or .safetensors, mapped onto the body with lib/weights'
// ResNetBodyToFasterRCNN) the defaults become torchvision's pretrained
// choice: 3 trainable stages and frozen BatchNorms; -trainable-layers and
// -frozen-bn override either.
//
// Outputs, in -out (default out/<dataset>):
//
//	checkpoint.safetensors  model, optimizer, scaler, counters, history (after every
//	                        epoch and every -ckpt-every steps; atomic)
//	history.csv, history.json, tb/events.out.tfevents.*   per-step losses, lr, scale
//	losses.png, lr.png      the loss curves (raw and smoothed) and the learning rate
//	metrics.json            COCO AP, AP50, AP75, AP by size, AR, VOC AP50, per class,
//	                        and the timing (seconds per epoch and step, load average)
//	summary.txt             pycocotools' 12-line summary and the per-class table
//	metrics_pr50.png        precision-recall curves per class at IoU 0.5
//	metrics_epochNN.json, summary_epochNN.txt   with -eval-every-epoch
//	model.safetensors       the trained weights under torchvision's keys
//	config.json             the flags of the run
//
// Ctrl-C (SIGINT) or SIGTERM stops within one training step: the
// checkpoint and the history are written and the command exits with
// status 130; run it again with -resume to continue. A second Ctrl-C
// kills it at once (the last checkpoint stays intact). Without -resume an
// existing checkpoint in -out is an error, so a run never overwrites
// another by accident.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

const usageHead = `Trains Faster R-CNN (ResNet18 body) on a VOC dataset or -data shapes with the
article's recipe, evaluates it on the test split with COCO's metrics and writes
the history, checkpoints and metrics to -out. Ctrl-C stops cleanly; -resume continues.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the process
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
