"""PyTorch's values for neurite's index, mask and comparison ops and its tensor printing.

Writes tests/data/index_ops.json: for each case the inputs, torch's output and the
gradient of sum(output * weights) with respect to each float input; and for each
printing case the values, shape and the exact string torch prints. tests/index_ops.rs
replays every case in neurite and compares, so CI needs no torch.

    /work/venv/bin/python bench/pytorch/check_index_ops.py   # rewrites the JSON
"""

import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)


def values(t):
    return {"shape": list(t.shape), "values": t.detach().reshape(-1).tolist()}


def floats(shape, offset=0.0):
    """Deterministic distinct float32 values in about [-2, 2]."""
    n = math.prod(shape)
    v = [round(2.0 * math.sin(1.3 * i + 0.4 + offset), 4) for i in range(n)]
    return torch.tensor(v, dtype=torch.float32).reshape(shape)


def case(name, inputs, fn, ints=None, masks=None, extra=None):
    """Runs fn on leaf copies of `inputs` (float tensors), projects each float output on
    fixed weights, and records outputs and input gradients."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    outs = fn(**leaves)
    if not isinstance(outs, tuple):
        outs = (outs,)
    loss = 0.0
    recorded = []
    for i, o in enumerate(outs):
        if o.dtype.is_floating_point:
            w = floats(list(o.shape), offset=10.0 + i)
            loss = loss + (o * w).sum()
            recorded.append({"kind": "float", **values(o), "weights": values(w)})
        elif o.dtype == torch.bool:
            recorded.append({"kind": "bool", "shape": list(o.shape), "values": o.reshape(-1).tolist()})
        else:
            recorded.append({"kind": "int", "shape": list(o.shape), "values": o.reshape(-1).tolist()})
    grads = {}
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward()
        grads = {k: values(v.grad) if v.grad is not None else values(torch.zeros_like(v)) for k, v in leaves.items()}
    return name, {
        "inputs": {k: values(v) for k, v in inputs.items()},
        "ints": {k: {"shape": list(v.shape), "values": v.reshape(-1).tolist()} for k, v in (ints or {}).items()},
        "masks": {k: {"shape": list(v.shape), "values": v.reshape(-1).tolist()} for k, v in (masks or {}).items()},
        "outputs": recorded,
        "grads": grads,
        "extra": extra or {},
    }


def build_cases():
    i = lambda v, shape: torch.tensor(v, dtype=torch.int64).reshape(shape)
    m = lambda v, shape: torch.tensor(v, dtype=torch.bool).reshape(shape)
    g1 = i([2, 0, 2, 1, 1, 1], [3, 2])
    g0 = i([2, 0, 1, 1, 2, 0], [2, 3])
    s0 = i([0, 2, 0, 3, 3, 1], [3, 2])
    s1 = i([2, 2, 0, 1, 0, 0, 0, 2], [2, 4])
    mask23 = m([True, False, False, True, True, False], [2, 3])
    col = m([True, False, True], [3, 1])
    targets = i([3, 0, 4, 4], [4])
    ids = i([5, 1, 5, 0], [2, 2])
    cases = [
        case("gather_dim1", {"x": floats([3, 4])}, lambda x: x.gather(1, g1), ints={"index": g1}),
        case("gather_dim0", {"x": floats([3, 3])}, lambda x: x.gather(0, g0), ints={"index": g0}),
        case("scatter_add_dim0", {"x": floats([4, 2]), "src": floats([3, 2], 5.0)},
             lambda x, src: x.scatter_add(0, s0, src), ints={"index": s0}),
        case("scatter_add_small_index", {"x": floats([2, 3]), "src": floats([2, 4], 5.0)},
             lambda x, src: x.scatter_add(1, s1, src), ints={"index": s1}),
        case("topk_largest", {"x": floats([3, 5])}, lambda x: torch.topk(x, 3, dim=1, largest=True)),
        case("topk_smallest_dim0", {"x": floats([4, 2, 3])}, lambda x: torch.topk(x, 2, dim=0, largest=False)),
        case("where", {"a": floats([2, 3]), "b": floats([3], 3.0)},
             lambda a, b: torch.where(mask23, a, b), masks={"mask": mask23}),
        case("where_broadcast_mask", {"a": floats([1, 4]), "b": floats([3, 1], 3.0)},
             lambda a, b: torch.where(col, a, b), masks={"mask": col}),
        case("masked_fill", {"x": floats([3, 4])}, lambda x: x.masked_fill(col, -5.0), masks={"mask": col}),
        case("max_dim1", {"x": floats([3, 4])}, lambda x: torch.max(x, dim=1)),
        case("max_dim0_keepdim", {"x": floats([3, 4])}, lambda x: torch.max(x, dim=0, keepdim=True)),
        case("min_dim1", {"x": floats([2, 3, 4])}, lambda x: torch.min(x, dim=1)),
        case("argmax_dim1", {"x": floats([4, 5])}, lambda x: x.argmax(dim=1)),
        case("argmin_dim0", {"x": floats([4, 5])}, lambda x: x.argmin(dim=0)),
        case("max_all", {"x": floats([3, 4])}, lambda x: x.max()),
        case("min_all", {"x": floats([3, 4])}, lambda x: x.min()),
        case("cross_entropy_int_targets", {"logits": floats([4, 5])},
             lambda logits: F.cross_entropy(logits, targets), ints={"targets": targets}),
        case("embedding_int_ids", {"weight": floats([6, 3])},
             lambda weight: F.embedding(ids, weight), ints={"ids": ids}),
        case("compare_gt_scalar", {"x": floats([2, 3])}, lambda x: (x > 0.5, x <= -0.5)),
        case("compare_broadcast", {"x": floats([2, 3]), "y": floats([3], 1.0)},
             lambda x, y: (x.ge(y), x.lt(y), x.eq(x[:, :1]), x.ne(y))),
        case("index_slices", {"x": floats([3, 4])},
             lambda x: (x[:, 1:3], x[-1], x[0, -1], x[1:, :2], x.select(1, -2))),
        case("reshape_infer", {"x": floats([2, 6])}, lambda x: x.t().reshape(-1, 4)),
        case("scalar_operators", {"x": floats([4])}, lambda x: (1.0 - x, 2.0 * x + 1.0, 3.0 / (x + 5.0), -x / 2.0)),
        case("to_int_truncates", {"x": floats([6])}, lambda x: (x * 2.0).long()),
    ]
    return dict(cases)


def display_cases():
    out = []

    def show(name, t, precision=4):
        torch.set_printoptions(precision=precision)
        text = str(t)
        torch.set_printoptions(profile="default")
        kind = "float" if t.dtype.is_floating_point else ("bool" if t.dtype == torch.bool else "int")
        out.append({
            "name": name,
            "kind": kind,
            "shape": list(t.shape),
            "values": [v if isinstance(v, (bool, int)) or math.isfinite(v) else str(v)
                       for v in t.detach().reshape(-1).tolist()],
            "requires_grad": t.requires_grad and t.grad_fn is None,
            "precision": precision,
            "text": text,
        })

    show("matrix", torch.tensor([[1.0, 2.5], [-3.0, 4.0]]))
    show("integers", torch.tensor([1.0, 2.0, -30.0]))
    show("zeros", torch.zeros(2, 3))
    show("scalar", torch.tensor(3.5))
    show("scientific", torch.tensor([1e-5, 1.0, 1000.0]))
    show("large_integers", torch.tensor([1.0, 5000.0]))
    show("above_1e8", torch.tensor([2.5e9, 1.0]))
    show("nonfinite", torch.tensor([float("nan"), float("inf"), -float("inf"), 1.5]))
    show("nonfinite_only", torch.tensor([float("nan"), 0.0]))
    show("cube", floats([2, 3, 4]))
    show("long_vector", floats([30]))
    show("long_rows", floats([2, 20]))
    show("summarized", (torch.arange(2000, dtype=torch.float32) * 0.5).reshape(40, 50))
    show("summarized_vector", torch.arange(1500, dtype=torch.float32) / 7.0)
    show("summarized_3d", floats([10, 11, 12]))
    show("requires_grad", torch.tensor([1.0, 2.0], requires_grad=True))
    show("precision_2", torch.tensor([[1.23456, -2.0], [0.5, 10.0]]), precision=2)
    show("empty_2d", torch.zeros(0, 3))
    show("empty_1d", torch.zeros(0))
    show("ints", torch.tensor([[1, -2], [30, 4]]))
    show("int_scalar", torch.tensor(7))
    show("int_summarized", torch.arange(3000))
    show("int_empty", torch.zeros(0, dtype=torch.int64))
    show("bools", torch.tensor([[True, False], [False, True]]))
    show("bool_empty", torch.zeros(0, 2, dtype=torch.bool))
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    text = str(y)
    out.append({"name": "grad_fn_mul", "kind": "float", "shape": [2], "values": [1.0, 2.0],
                "requires_grad": True, "precision": 4, "text": text, "op": "mul_scalar"})
    return out


def main():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    path = os.path.join(root, "tests", "data", "index_ops.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = {"torch": torch.__version__, "cases": build_cases(), "display": display_cases()}
    with open(path, "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"wrote {path}: {len(data['cases'])} op cases, {len(data['display'])} printing cases")


if __name__ == "__main__":
    main()
