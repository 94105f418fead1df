# Generates the .pth fixtures of lib/weights (torch 1.13, Debian's python3-torch):
#   /usr/bin/python3 gen_pth.py
# expected.json holds every tensor made contiguous: float types as float32
# values, integer and bool types as int64 values.
import collections, json
import torch

torch.manual_seed(0)
base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8
shared = torch.randn(10)
sd = collections.OrderedDict()
sd["a.weight"] = torch.randn(2, 3)
sd["b.transposed"] = torch.randn(3, 4).t()            # strides (1, 4)
sd["c.slice"] = base[1:, ::2]                         # offset 6, strides (6, 2)
sd["d.half"] = (torch.randn(5) * 3).half()
sd["e.bf16"] = (torch.randn(5) * 3).bfloat16()
sd["f.double"] = torch.randn(2, 2, dtype=torch.float64)
sd["bn.num_batches_tracked"] = torch.tensor(7, dtype=torch.long)
sd["g.int32"] = torch.tensor([-3, 0, 5], dtype=torch.int32)
sd["h.bool"] = torch.tensor([True, False, True])
sd["i.expanded"] = torch.tensor([1.5, -2.0]).expand(3, 2)   # stride (0, 1)
sd["j.view1"] = shared[2:6]
sd["j.view2"] = shared[4:10].view(2, 3)
sd["k.empty"] = torch.zeros(0, 3)
sd["l.scalar"] = torch.tensor(2.25)
sd["m.param"] = torch.nn.Parameter(torch.randn(2))
sd["n.permuted"] = torch.randn(2, 3, 4).permute(2, 0, 1)

torch.save(sd, "mixed.pth")
torch.save(sd, "mixed_legacy.pth", _use_new_zipfile_serialization=False)
small = collections.OrderedDict((k, sd[k]) for k in ["a.weight", "bn.num_batches_tracked"])
torch.save({"epoch": 3, "model": small, "optimizer": {"lr": 0.01, "momentum": [0.9]}}, "checkpoint.pth")
torch.save(torch.nn.Linear(2, 2), "module.pth")

exp = {}
for k, v in sd.items():
    v = v.detach().contiguous()
    if v.is_floating_point():
        vals = v.float().reshape(-1).tolist()
    else:
        vals = v.long().reshape(-1).tolist()
    exp[k] = {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape), "values": vals}
with open("expected.json", "w") as f:
    json.dump({"names": list(sd.keys()), "tensors": exp}, f, indent=0)

# A real module's state_dict carries OrderedDict._metadata (pickled with BUILD).
torch.manual_seed(1)
bn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
bn.train()
bn(torch.randn(4, 1, 3, 3))
torch.save(bn.state_dict(), "module_state_dict.pth")
with open("module_state_dict.json", "w") as f:
    json.dump({k: v.reshape(-1).tolist() for k, v in bn.state_dict().items()}, f)
