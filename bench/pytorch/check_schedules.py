"""Writes PyTorch's learning rates, step by step, for each schedule neurite offers, to
tests/data/schedules.json (tests/schedules.rs compares neurite's with them; CI has no torch).

    /work/venv/bin/python bench/pytorch/check_schedules.py [--out tests/data/schedules.json]

Each case names neurite's schedule in the same terms (`decay`, `base_lr`, `warmup`, `total`)
and lists `lrs`: the rate of optimizer steps 0, 1, 2, ... as `scheduler.get_last_lr()` gives
it before each `optimizer.step(); scheduler.step()`. ReduceLROnPlateau lists the rate after
each `scheduler.step(metric)` of `metrics`.
"""

import argparse
import json
import math
import os

import torch


def optimizer(lr):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def rates(make, lr, steps):
    opt = optimizer(lr)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def cases():
    S = torch.optim.lr_scheduler
    c = []
    c.append(dict(name="step", base_lr=0.1, warmup=0, total=20,
                  decay={"kind": "step", "every": 5, "gamma": 0.5},
                  lrs=rates(lambda o: S.StepLR(o, step_size=5, gamma=0.5), 0.1, 20)))
    c.append(dict(name="exponential", base_lr=0.1, warmup=0, total=20,
                  decay={"kind": "exponential", "every": 1, "gamma": 0.9},
                  lrs=rates(lambda o: S.ExponentialLR(o, gamma=0.9), 0.1, 20)))
    c.append(dict(name="cosine", base_lr=0.1, warmup=0, total=20,
                  decay={"kind": "cosine", "min_lr": 0.001},
                  lrs=rates(lambda o: S.CosineAnnealingLR(o, T_max=20, eta_min=0.001), 0.1, 21)))
    # Linear warm-up from lr/w to lr over w steps, then cosine over the rest.
    w, total = 5, 25
    c.append(dict(name="warmup_cosine", base_lr=0.1, warmup=w, total=total,
                  decay={"kind": "cosine", "min_lr": 0.0},
                  lrs=rates(lambda o: S.SequentialLR(o, [
                      S.LinearLR(o, start_factor=1 / w, end_factor=1.0, total_iters=w - 1),
                      S.CosineAnnealingLR(o, T_max=total - w)], milestones=[w]), 0.1, total)))
    for name, pct, div, fdiv, total in [("onecycle", 0.3, 25.0, 1e4, 30),
                                        ("onecycle_short", 0.25, 10.0, 100.0, 17)]:
        c.append(dict(name=name, base_lr=0.1, warmup=0, total=total,
                      decay={"kind": "onecycle", "pct_start": pct, "div_factor": div,
                             "final_div_factor": fdiv},
                      lrs=rates(lambda o: S.OneCycleLR(
                          o, max_lr=0.1, total_steps=total, pct_start=pct, div_factor=div,
                          final_div_factor=fdiv, cycle_momentum=False), 0.1, total)))
    c.append(dict(name="multistep", base_lr=0.1, warmup=0, total=20,
                  decay={"kind": "multistep", "milestones": [5, 12], "gamma": 0.1},
                  lrs=rates(lambda o: S.MultiStepLR(o, milestones=[5, 12], gamma=0.1), 0.1, 20)))
    c.append(dict(name="linear_to_zero", base_lr=0.1, warmup=0, total=20,
                  decay={"kind": "linear", "start_factor": 1.0, "end_factor": 0.0, "iters": 20},
                  lrs=rates(lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.0,
                                                 total_iters=20), 0.1, 25)))
    c.append(dict(name="linear_default", base_lr=0.05, warmup=0, total=5,
                  decay={"kind": "linear", "start_factor": 1 / 3, "end_factor": 1.0, "iters": 5},
                  lrs=rates(lambda o: S.LinearLR(o), 0.05, 10)))
    return c


def plateau_cases():
    out = []
    losses = [1.0, 0.9, 0.85, 0.86, 0.85, 0.87, 0.84, 0.8401, 0.85, 0.9, 0.9, 0.9, 0.9, 0.5,
              0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    accs = [0.5, 0.6, 0.6, 0.61, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    for name, metrics, kw in [
        ("plateau_min_rel", losses, dict(mode="min", factor=0.5, patience=2, threshold=1e-2,
                                         cooldown=1, min_lr=0.01)),
        ("plateau_min_abs", losses, dict(mode="min", factor=0.1, patience=1, threshold=0.02,
                                         threshold_mode="abs")),
        ("plateau_max", accs, dict(mode="max", factor=0.5, patience=1, cooldown=2)),
        ("plateau_floor", [1.0] * 6, dict(factor=0.5, patience=0, cooldown=1, min_lr=0.3)),
    ]:
        base_lr = 1.0 if name == "plateau_floor" else 0.1
        opt = optimizer(base_lr)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
        lrs = []
        for m in metrics:
            opt.step()
            sched.step(m)
            lrs.append(opt.param_groups[0]["lr"])
        cfg = dict(kw)
        cfg.setdefault("mode", "min")
        cfg.setdefault("threshold_mode", "rel")
        out.append(dict(name=name, base_lr=base_lr, plateau=cfg, metrics=metrics, lrs=lrs))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data",
                                                 "schedules.json"))
    a = p.parse_args()
    data = {"torch": torch.__version__, "schedules": cases(), "plateaus": plateau_cases()}
    for c in data["schedules"] + data["plateaus"]:
        assert all(math.isfinite(v) for v in c["lrs"])
    with open(a.out, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print(f"wrote {len(data['schedules'])} schedules and {len(data['plateaus'])} plateau runs "
          f"to {os.path.normpath(a.out)}")


if __name__ == "__main__":
    main()
