#!/usr/bin/env python3
"""Regenerate the golden resnet18.safetensors where it cannot travel.

The file (44 MiB) does not fit in what may be carried to a GPU machine, but
it is random initial weights from a seed (see ../shared/golden/README.md,
"resnet18.safetensors"), so that machine's PyTorch can make it again:

    python3 resnet18_golden.py OUT.safetensors [--want SHA256]

writes the state dict in module order (the original's layout) and prints the
sha256 of its data section (every tensor's bytes, in order). With --want it
exits 1 unless that hash is the original's, which scripts/gpu-build records:
the data is then bit for bit the golden's, whatever PyTorch version made it.
"""
import argparse
import hashlib
import json
import struct
import sys

import torch
import torchvision

DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def build():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, progress=True, num_classes=1000)
    with torch.no_grad():
        for _, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
    model.eval()
    return model.state_dict()


def write(sd, path):
    header, blobs, off = {}, [], 0
    header["__metadata__"] = {"generator": "scripts/gpu/resnet18_golden.py", "torch": torch.__version__,
                              "torchvision": torchvision.__version__, "seed": "0",
                              "model": "torchvision.models.resnet18(num_classes=1000)"}
    for k, t in sd.items():
        b = t.detach().cpu().contiguous().numpy().tobytes()
        header[k] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    data = b"".join(blobs)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--want", default="")
    a = p.parse_args()
    got = write(build(), a.out)
    print("resnet18.safetensors data sha256 %s (torch %s, torchvision %s)" % (got, torch.__version__, torchvision.__version__))
    if a.want and got != a.want:
        print("differs from the golden's %s: this PyTorch does not reproduce it bit for bit" % a.want)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
