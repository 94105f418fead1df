# Generates interp.json: torch 1.13's bilinear resize (align_corners=False,
# no antialias, output size given, as GeneralizedRCNNTransform calls it after
# recompute_scale_factor) on small random images, for lib/transform tests:
#   /usr/bin/python3 gen_interp.py
import json
import torch

torch.manual_seed(5)
torch.set_num_threads(1)
cases = []
for (c, h, w), (oh, ow) in [
    ((3, 7, 5), (15, 11)),     # upscale, odd ratios
    ((3, 17, 23), (6, 9)),     # downscale without antialias
    ((2, 9, 9), (9, 20)),      # one axis unchanged (copy branch)
    ((1, 1, 4), (3, 8)),       # single row
    ((3, 31, 13), (30, 40)),   # shrink one axis, grow the other
    ((1, 5, 6), (5, 6)),       # identity
]:
    x = torch.randn(c, h, w) * 2
    y = torch.nn.functional.interpolate(x[None], size=(oh, ow), mode="bilinear", align_corners=False)[0]
    cases.append({"in": [c, h, w], "out": [oh, ow],
                  "input": [float(v) for v in x.reshape(-1).tolist()],
                  "output": [float(v) for v in y.reshape(-1).tolist()]})
with open("interp.json", "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
