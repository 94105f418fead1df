#!/usr/bin/python3
"""PyTorch side of detlab-bench: the same workloads as workloads.go.

Run by `go run ./cmd/detlab-bench`, one process per workload:

    python3 torch_bench.py --workload frcnn-train-320-b2 --runs 5 --warmup 1

prints one JSON line: name, times_ms, median_ms, cpu_ms (CPU time per
run), peak_rss_mb (ru_maxrss of
this process, torch import included), backend.
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import MultiScaleRoIAlign, nms, roi_align

torch.set_num_threads(2)


def resnet_forward(dtype=None):
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=1000).eval()
    x = torch.rand(1, 3, 224, 224) * 4 - 2

    def step():
        with torch.no_grad():
            if dtype is None:
                m(x)
            else:
                with torch.autocast("cpu", dtype=dtype):
                    m(x)
    return step


def resnet_train():
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=1000).train()
    x = torch.rand(2, 3, 224, 224) * 4 - 2

    def step():
        m.zero_grad(set_to_none=False)
        m(x).mean().backward()
    return step


def frcnn_model(h, w):
    """torchvision's FasterRCNN with detlab's defaults: ResNet18 body (no
    FPN), anchors (32..512) x (0.5, 1, 2), RoIAlign 7x7 s2, TwoMLPHead 1024,
    5 classes; transform sized so h x w images are not rescaled."""
    torch.manual_seed(0)
    body = torchvision.models.resnet18(num_classes=1000)
    backbone = torch.nn.Sequential(*list(body.children())[:-2])
    backbone.out_channels = 512
    ag = AnchorGenerator(sizes=((32, 64, 128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),))
    pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    return FasterRCNN(backbone, num_classes=5, min_size=min(h, w), max_size=max(h, w),
                      rpn_anchor_generator=ag, box_roi_pool=pool)


def bench_targets(h, w, n):
    sx, sy = w / 320, h / 320
    b = torch.tensor([[20 * sx, 30 * sy, 140 * sx, 160 * sy],
                      [150 * sx, 40 * sy, 300 * sx, 120 * sy],
                      [60 * sx, 180 * sy, 200 * sx, 310 * sy]])
    return [{"boxes": b.clone(), "labels": torch.tensor([1, 2, 3])} for _ in range(n)]


def _float32_ops():
    """torchvision 0.14's CPU nms and roi_align kernels have no bfloat16
    versions and, unlike on CUDA, are not registered for CPU autocast: under
    torch.autocast("cpu", torch.bfloat16) they fail with "nms_kernel (or
    roi_align_forward_kernel) not implemented for 'BFloat16'". Wrap them as
    torchvision's CUDA autocast does: compute in float32, and give roi_align's
    result back in its input's dtype. (detlab's autocast likewise runs box
    ops in float32 and RoIAlign on bfloat16-rounded features.)"""
    import torchvision.ops.boxes as box_ops
    import torchvision.ops.poolers as poolers
    if getattr(box_ops.nms, "_float32", False):
        return
    nms32, roi_align32 = box_ops.nms, poolers.roi_align

    def nms(boxes, scores, iou_threshold):
        return nms32(boxes.float(), scores.float(), iou_threshold)

    def roi_align(input, boxes, *args, **kwargs):
        if isinstance(boxes, torch.Tensor):
            boxes = boxes.float()
        else:
            boxes = [b.float() for b in boxes]
        return roi_align32(input.float(), boxes, *args, **kwargs).to(input.dtype)
    nms._float32 = True
    box_ops.nms, poolers.roi_align = nms, roi_align


def frcnn_train(h, w, dtype=None):
    """One training step; with dtype, the forward (and so the losses) runs
    under torch.autocast("cpu", dtype), as AMP training does."""
    if dtype is not None:
        _float32_ops()
    m = frcnn_model(h, w).train()
    images = [torch.rand(3, h, w), torch.rand(3, h, w)]
    targets = bench_targets(h, w, 2)

    def step():
        m.zero_grad(set_to_none=False)
        if dtype is None:
            losses = m(images, targets)
        else:
            with torch.autocast("cpu", dtype=dtype):
                losses = m(images, targets)
        sum(losses.values()).backward()
    return step


def frcnn_infer(h, w):
    m = frcnn_model(h, w).eval()
    img = torch.rand(3, h, w)

    def step():
        with torch.no_grad():
            m([img])
    return step


def random_boxes(k, h, w):
    x1 = torch.rand(k) * (w - 16)
    y1 = torch.rand(k) * (h - 16)
    x2 = torch.clamp(x1 + 16 + torch.rand(k) * w / 2, max=w)
    y2 = torch.clamp(y1 + 16 + torch.rand(k) * h / 2, max=h)
    return torch.stack([x1, y1, x2, y2], 1)


def roialign_fb():
    torch.manual_seed(3)
    feat = torch.rand(2, 512, 10, 10, requires_grad=True)
    k = 1024
    idx = (torch.arange(k) * 2 // k).float().unsqueeze(1)
    rois = torch.cat([idx, random_boxes(k, 320, 320)], 1)
    gy = torch.rand(k, 512, 7, 7)

    def step():
        feat.grad = None
        out = roi_align(feat, rois, (7, 7), spatial_scale=1 / 32, sampling_ratio=2, aligned=False)
        out.backward(gy)
    return step


def nms_2000():
    torch.manual_seed(4)
    boxes = random_boxes(2000, 480, 640)
    scores = torch.rand(2000)

    def step():
        nms(boxes, scores, 0.7)
    return step


def anchors_640():
    il = ImageList(torch.zeros(1, 3, 480, 640), [(480, 640)])
    feats = [torch.zeros(1, 512, 15, 20)]

    def step():
        ag = AnchorGenerator(sizes=((32, 64, 128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),))
        a = ag(il, feats)
        assert a[0].shape[0] == 15 * 20 * 15
    return step


WORKLOADS = {
    "resnet18-fwd-224-b1": lambda: resnet_forward(),
    "resnet18-fwd-224-b1-bf16": lambda: resnet_forward(torch.bfloat16),
    "resnet18-train-224-b2": resnet_train,
    "frcnn-train-320-b2": lambda: frcnn_train(320, 320),
    "frcnn-train-320-b2-bf16": lambda: frcnn_train(320, 320, torch.bfloat16),
    "frcnn-infer-320-b1": lambda: frcnn_infer(320, 320),
    "frcnn-train-640x480-b2": lambda: frcnn_train(480, 640),
    "frcnn-infer-640x480-b1": lambda: frcnn_infer(480, 640),
    "roialign-fb-train": roialign_fb,
    "nms-2000": nms_2000,
    "anchors-640x480": anchors_640,
    "anchors-640x480-fresh": anchors_640,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    a = p.parse_args()
    r = {"name": a.workload, "backend": "torch %s, %d threads, %s" % (
        torch.__version__, torch.get_num_threads(), torch.backends.cpu.get_cpu_capability()
        if hasattr(torch.backends, "cpu") else "")}
    try:
        step = WORKLOADS[a.workload]()
        for _ in range(a.warmup):
            step()
        times = []
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(a.runs):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1000)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        r["cpu_ms"] = ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) * 1000 / a.runs
        r["times_ms"] = times
        r["median_ms"] = statistics.median(times)
    except Exception as e:  # reported in the table, not a traceback
        r["error"] = "%s: %s" % (type(e).__name__, e)
    r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(r))
    return 1 if "error" in r else 0


if __name__ == "__main__":
    sys.exit(main())
