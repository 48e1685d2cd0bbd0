"""Train a spec model on Fashion-MNIST with the spec's quality recipes (Q1-Q4).

    python train.py MODEL [--epochs N] [--limit-train N] [--out CKPT.safetensors] [--threads N]
                          [--device cuda] [--augment crop_flip|flip|none] [--decay all|matrices]
                          [--lr LR] [--warmup-epochs N] [--seed S]
                          [--recipe spec|fast] [--schedule cosine|onecycle:PCT]
                          [--label-smoothing EPS] [--tta none|flip] [--wd WD]
                          [--eval-every N]

The last options change the recipe, for searching one (Q4's was searched this way on a GPU):
`--decay matrices` exempts biases, norms, the class token and the position embedding from
weight decay (nanoGPT's and timm's convention); the default is PyTorch's plain optimizer over
all parameters.

Recipes (spec, "Quality workloads"):
  mlp, lenet5  SGD momentum 0.9, lr 0.05 cosine to 0 (per step), batch 128, 20 epochs
  resnet20     SGD momentum 0.9, lr 0.1 cosine, wd 5e-4, batch 128,
               random crop (pad 2) + horizontal flip, 30 epochs
  vit          AdamW lr 1e-3 cosine with warmup, wd 0.05, batch 128, same augmentation,
               30 epochs (the warm-up length is not in the spec: 1 epoch here)
`--recipe fast` is neurite's `--recipe fast` for resnet20 and vit (issue 24: time to accuracy).
resnet20: SGD
momentum 0.9, one-cycle (PyTorch's OneCycleLR with pct_start 0.25 and no momentum cycling, as
neurite's `onecycle:0.25`) to lr 0.1, wd 5e-4, label smoothing 0.1, flips without crops,
test-time flip averaging (the mean of the logits of each image and its mirror image), 11
epochs, one test evaluation at the end (`--eval-every N`: after every N-th epoch and the
last). vit: the spec's AdamW with weight decay on the weight matrices only, flips without
crops, label smoothing 0.1, test-time flips, 30 epochs, one evaluation at the end.

Every epoch reshuffles (seeded) and keeps the last partial batch. Prints the test
accuracy and loss after every epoch, and the wall-clock seconds since the start of training
(evaluations included: the time to accuracy); `--out` saves a safetensors state_dict with
metadata normalize.mean / normalize.std.
"""

import argparse
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import FashionMNIST  # noqa: E402
from models import build, state_dict_for_safetensors  # noqa: E402

RECIPES = {
    "mlp": dict(opt="sgd", lr=0.05, wd=0.0, epochs=20, augment=False, warmup_epochs=0),
    "lenet5": dict(opt="sgd", lr=0.05, wd=0.0, epochs=20, augment=False, warmup_epochs=0),
    "resnet20": dict(opt="sgd", lr=0.1, wd=5e-4, epochs=30, augment=True, warmup_epochs=0),
    "vit": dict(opt="adamw", lr=1e-3, wd=0.05, epochs=30, augment=True, warmup_epochs=1),
}
FAST = {
    "resnet20": dict(opt="sgd", lr=0.1, wd=5e-4, epochs=11, augment="flip", warmup_epochs=0,
                     schedule="onecycle:0.25", label_smoothing=0.1, tta="flip", eval_every=11),
    "vit": dict(opt="adamw", lr=1e-3, wd=0.05, epochs=30, augment="flip", warmup_epochs=1,
                decay="matrices", label_smoothing=0.1, tta="flip", eval_every=30),
}
BATCH = 128


def augment(x, pad_value, gen, padding=2, crop=True):
    """Random crop after padding `padding` pixels of `pad_value` (a zero pixel, normalized) and a
    horizontal flip with probability 0.5, per image: x [N, C, H, W] -> [N, C, H, W]."""
    n, c, h, w = x.shape
    dev = x.device
    if not crop:
        flip = (torch.rand(n, generator=gen) < 0.5).to(dev)
        return torch.where(flip[:, None, None, None], x.flip(3), x).contiguous()
    padded = F.pad(x, (padding,) * 4, value=pad_value)  # [N, C, H+2p, W+2p]
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)).to(dev)  # [N, H]
    cols = (dx[:, None] + torch.arange(w)).to(dev)  # [N, W]
    idx = torch.arange(n, device=dev)[:, None, None]
    out = padded[idx, :, rows[:, :, None], cols[:, None, :]]  # [N, H, W, C]
    out = out.permute(0, 3, 1, 2)
    flip = (torch.rand(n, generator=gen) < 0.5).to(dev)
    return torch.where(flip[:, None, None, None], out.flip(3), out).contiguous()


@torch.no_grad()
def evaluate(model, x, y, batch=1000, tta="none"):
    """(accuracy, mean cross-entropy) of `model` in eval mode on x [N, C, H, W], y [N]; with
    `tta == "flip"` the logits are the mean of each image's and its mirror image's."""
    model.eval()
    correct, loss_sum = 0, 0.0
    for i in range(0, x.shape[0], batch):
        logits = model(x[i:i + batch])
        if tta == "flip":
            logits = 0.5 * (logits + model(x[i:i + batch].flip(3)))
        loss_sum += F.cross_entropy(logits, y[i:i + batch], reduction="sum").item()
        correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    return correct / x.shape[0], loss_sum / x.shape[0]


def lr_at(step, total, base, warmup, schedule="cosine"):
    """Linear warm-up over `warmup` steps, then cosine from `base` to 0 at step `total`; or
    (`schedule == "onecycle:PCT"`) OneCycleLR's rate (div_factor 25, final_div_factor 1e4,
    cosine annealing) with pct_start PCT."""
    if schedule.startswith("onecycle"):
        pct = float(schedule.split(":")[1]) if ":" in schedule else 0.3
        initial = base / 25.0
        min_lr = initial / 1e4
        end_up, end_down = pct * total - 1.0, total - 1.0

        def anneal(start, end, t):
            return end + (start - end) / 2.0 * (math.cos(math.pi * t) + 1.0)

        if step <= end_up:
            return anneal(initial, base, step / end_up if end_up > 0 else 1.0)
        return anneal(base, min_lr, min(1.0, (step - end_up) / (end_down - end_up)))
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * base * (1.0 + math.cos(math.pi * t))


def param_groups(model, wd, decay):
    """All parameters decayed by `wd` (`decay == "all"`), or only those of 2+ dimensions except
    the class token and position embedding (`"matrices"`)."""
    if decay == "all":
        return [dict(params=list(model.parameters()), weight_decay=wd)]
    yes, no = [], []
    for name, p in model.named_parameters():
        (yes if p.dim() >= 2 and name not in ("cls_token", "pos_embed") else no).append(p)
    return [dict(params=yes, weight_decay=wd), dict(params=no, weight_decay=0.0)]


def train(name, ds, epochs=None, seed=0, log=print, device="cpu", augment_kind=None, decay=None,
          lr=None, warmup_epochs=None, recipe="spec", schedule=None, label_smoothing=None,
          tta=None, wd=None, eval_every=None):
    """Trains `name` on `ds` with its recipe (`recipe`: spec or fast; the keyword arguments
    override parts of it); returns (model, history of per-epoch dicts)."""
    r = dict(RECIPES[name] if recipe == "spec" else FAST[name])
    r.setdefault("schedule", "cosine")
    r.setdefault("label_smoothing", 0.0)
    r.setdefault("tta", "none")
    r.setdefault("eval_every", 1)
    for key, v in (("schedule", schedule), ("label_smoothing", label_smoothing), ("tta", tta),
                   ("wd", wd), ("eval_every", eval_every)):
        if v is not None:
            r[key] = v
    epochs = r["epochs"] if epochs is None else epochs
    if lr is not None:
        r["lr"] = lr
    if warmup_epochs is not None:
        r["warmup_epochs"] = warmup_epochs
    if augment_kind is None:
        augment_kind = r["augment"] if isinstance(r["augment"], str) else (
            "crop_flip" if r["augment"] else "none")
    decay = r.get("decay", "all") if decay is None else decay
    torch.manual_seed(seed)
    model = build(name).to(device)
    groups = param_groups(model, r["wd"], decay)
    if r["opt"] == "sgd":
        opt = torch.optim.SGD(groups, lr=r["lr"], momentum=0.9)
    else:
        opt = torch.optim.AdamW(groups, lr=r["lr"])
    n = ds.train_x.shape[0]
    steps_per_epoch = math.ceil(n / BATCH)
    total = epochs * steps_per_epoch
    warmup = round(r["warmup_epochs"] * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    pad_value = (0.0 - ds.mean) / ds.std
    step, history = 0, []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen).to(device)
        loss_sum = 0.0
        for i in range(0, n, BATCH):
            idx = order[i:i + BATCH]
            x, y = ds.train_x[idx], ds.train_y[idx]
            if augment_kind != "none":
                x = augment(x, pad_value, gen, crop=augment_kind == "crop_flip")
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, r["lr"], warmup, r["schedule"])
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y, label_smoothing=r["label_smoothing"])
            loss.backward()
            opt.step()
            loss_sum += loss.item() * y.shape[0]
            step += 1
        secs = time.perf_counter() - t0
        if epoch % r["eval_every"] != 0 and epoch != epochs:
            history.append(dict(epoch=epoch, train_loss=loss_sum / n, test_accuracy=None,
                                test_loss=None, seconds=secs, elapsed=None))
            log(f"epoch {epoch:>3}/{epochs}  train loss {loss_sum / n:.4f}  (no test evaluation)  "
                f"{secs:.1f} s")
            continue
        acc, test_loss = evaluate(model, ds.test_x, ds.test_y, tta=r["tta"])
        elapsed = time.perf_counter() - start
        h = dict(epoch=epoch, train_loss=loss_sum / n, test_accuracy=acc, test_loss=test_loss,
                 seconds=secs, elapsed=elapsed)
        history.append(h)
        log(f"epoch {epoch:>3}/{epochs}  train loss {h['train_loss']:.4f}  test acc {acc:.4f}  "
            f"test loss {test_loss:.4f}  {secs:.1f} s  elapsed {elapsed:.1f} s")
    return model, history


def save(model, ds, path, extra=None):
    """safetensors state_dict with normalize.mean/std (and `extra`) as metadata."""
    from safetensors.torch import save_file

    meta = ds.metadata()
    meta.update({k: str(v) for k, v in (extra or {}).items()})
    save_file(state_dict_for_safetensors(model), path, metadata=meta)


def main():
    sys.stdout.reconfigure(line_buffering=True)  # each epoch's line as it ends
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=list(RECIPES))
    p.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    p.add_argument("--limit-train", type=int, default=None, help="use the first N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--data", default=None, help="Fashion-MNIST directory")
    p.add_argument("--out", default=None, help="save the trained state_dict here (safetensors)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--augment", choices=["crop_flip", "flip", "none"], default=None,
                   help="default: the recipe's")
    p.add_argument("--decay", choices=["all", "matrices"], default=None,
                   help="which parameters weight decay applies to (default: the recipe's; all for spec)")
    p.add_argument("--lr", type=float, default=None, help="default: the recipe's")
    p.add_argument("--warmup-epochs", type=float, default=None, help="default: the recipe's")
    p.add_argument("--recipe", choices=["spec", "fast"], default="spec",
                   help="fast: neurite's --recipe fast (resnet20 and vit)")
    p.add_argument("--schedule", default=None, help="cosine or onecycle:PCT (default: the recipe's)")
    p.add_argument("--label-smoothing", type=float, default=None, help="default: the recipe's")
    p.add_argument("--tta", choices=["none", "flip"], default=None, help="default: the recipe's")
    p.add_argument("--wd", type=float, default=None, help="weight decay (default: the recipe's)")
    p.add_argument("--eval-every", type=int, default=None,
                   help="evaluate after every N-th epoch and the last (default: the recipe's)")
    a = p.parse_args()
    if a.recipe == "fast" and a.model not in FAST:
        p.error(f"--recipe fast: {a.model} has no fast recipe here; the models with one: {list(FAST)}")
    torch.set_num_threads(a.threads)
    ds = FashionMNIST(a.data, limit_train=a.limit_train)
    if a.device != "cpu":
        for k in ("train_x", "train_y", "test_x", "test_y"):
            setattr(ds, k, getattr(ds, k).to(a.device))
    print(f"{a.model}: {ds.train_x.shape[0]} train / {ds.test_x.shape[0]} test images, "
          f"normalize mean {ds.mean:.7f} std {ds.std:.7f}, {a.threads} threads, torch {torch.__version__}")
    model, history = train(a.model, ds, a.epochs, a.seed, device=a.device, augment_kind=a.augment,
                           decay=a.decay, lr=a.lr, warmup_epochs=a.warmup_epochs, recipe=a.recipe,
                           schedule=a.schedule, label_smoothing=a.label_smoothing, tta=a.tta,
                           wd=a.wd, eval_every=a.eval_every)
    if a.out:
        save(model, ds, a.out, {"model": a.model, "epochs": len(history)})
        print(f"saved {a.out}")


if __name__ == "__main__":
    main()
