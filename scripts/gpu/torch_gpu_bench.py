#!/usr/bin/env python3
"""PyTorch side of scripts/gpu-check: torchvision's Faster R-CNN on a GPU.

The model is cmd/detlab-bench/torch_bench.py's frcnn_model (imported from
there, so both benchmarks build the same network): ResNet18 body without FPN,
anchors (32..512) x (0.5, 1, 2), RoIAlign 7x7 sampling 2, TwoMLPHead 1024,
5 classes, the transform sized so h x w images are not rescaled.

One process per workload, as detlab-bench runs it:

    python3 torch_gpu_bench.py --workload frcnn-train-640x480-b8-amp --device cuda:0 --runs 5

Workload names: frcnn-train-WxH-bN[-amp|-bf16] (training step: zero_grad, forward
with targets, sum of the four losses, backward; -amp: torch.autocast
float16 and a GradScaler scaling the loss; on the CPU, where torchvision
has no autocast rules, the same code runs with both disabled; -bf16:
bfloat16 autocast without a scaler) and frcnn-infer-WxH-bN (eval forward
under no_grad); WxH is width x height, as 640x480; a bare 320 means
320x320. --size WxH replaces
the size in the name (the CPU smoke test of gpu-check uses a tiny one).

Timing brackets each step with torch.cuda.synchronize(); peak_gpu_mb is
torch.cuda.max_memory_allocated() over the whole process (model, warm-up and
timed runs). Prints one JSON line in detlab-bench's format.
"""
import argparse
import json
import os
import re
import resource
import statistics
import sys
import time

import torch

_threads = torch.get_num_threads()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cmd", "detlab-bench"))
import torch_bench  # noqa: E402  (sets 2 threads for the CPU benchmark; undone below)

torch.set_num_threads(_threads)

NAME = re.compile(r"^frcnn-(train|infer)-(\d+)(?:x(\d+))?-b(\d+)(-amp|-bf16)?$")


def parse(name, size):
    m = NAME.match(name)
    if not m:
        raise ValueError("unknown workload %r (want frcnn-train|infer-WxH-bN[-amp|-bf16])" % name)
    kind, w, h, n, amp = m.group(1), int(m.group(2)), int(m.group(3) or m.group(2)), int(m.group(4)), m.group(5) or ""
    if size:
        w, h = (int(v) for v in size.lower().split("x"))
    if kind == "infer" and amp:
        raise ValueError("%s: inference runs in float32 only" % name)
    return kind, h, w, n, amp


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def make_step(name, dev, size):
    kind, h, w, n, amp = parse(name, size)
    m = torch_bench.frcnn_model(h, w).to(dev)
    g = torch.Generator().manual_seed(1)
    images = [torch.rand(3, h, w, generator=g).to(dev) for _ in range(n)]
    if kind == "infer":
        m.eval()

        def infer():
            with torch.no_grad():
                m(images)
        return infer
    m.train()
    targets = [{k: v.to(dev) for k, v in t.items()} for t in torch_bench.bench_targets(h, w, n)]
    # torchvision's nms and roi_align have autocast rules for cuda only (on
    # the CPU, bfloat16 autocast fails in nms): the CPU smoke run takes the
    # same code path with autocast and the scaler disabled. -bf16 (detlab's
    # CPU table) is bfloat16 autocast without a scaler.
    on = bool(amp) and dev.type == "cuda"
    dtype = torch.float16 if on and amp == "-amp" else torch.bfloat16  # CPU autocast takes only bfloat16, even disabled
    scaler = None
    if amp == "-amp":
        scaler = torch.amp.GradScaler("cuda", enabled=on) if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler") \
            else torch.cuda.amp.GradScaler(enabled=on)

    def train():
        m.zero_grad(set_to_none=False)
        with torch.autocast(dev.type, dtype=dtype, enabled=on):
            losses = m(images, targets)
            loss = sum(losses.values())
        (scaler.scale(loss) if scaler is not None else loss).backward()
    return train


def backend(dev):
    s = "torch %s, torchvision %s" % (torch.__version__, torch_bench.torchvision.__version__)
    if dev.type == "cuda":
        s += ", %s, CUDA %s, cuDNN %s" % (torch.cuda.get_device_name(dev), torch.version.cuda,
                                           torch.backends.cudnn.version())
    else:
        s += ", cpu, %d threads" % torch.get_num_threads()
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cuda")
    p.add_argument("--size", default="", help="WxH replacing the workload's size (smoke tests)")
    a = p.parse_args()
    r = {"name": a.workload}
    try:
        dev = torch.device(a.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("torch.cuda.is_available() is False (torch %s built for CUDA %s)"
                               % (torch.__version__, torch.version.cuda))
        r["backend"] = backend(dev)
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.cuda.reset_peak_memory_stats(dev)
        step = make_step(a.workload, dev, a.size)
        for _ in range(a.warmup):
            step()
        sync(dev)
        times = []
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(a.runs):
            t0 = time.perf_counter()
            step()
            sync(dev)
            times.append((time.perf_counter() - t0) * 1000)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        r["cpu_ms"] = ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) * 1000 / max(a.runs, 1)
        r["times_ms"] = times
        r["median_ms"] = statistics.median(times) if times else 0
        if dev.type == "cuda":
            r["peak_gpu_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    except Exception as e:  # reported in the table, not a traceback
        r["error"] = "%s: %s" % (type(e).__name__, e)
    r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(r))
    return 1 if "error" in r else 0


if __name__ == "__main__":
    sys.exit(main())
