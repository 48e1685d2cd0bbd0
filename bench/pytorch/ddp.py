"""PyTorch DDP (Gloo, CPU) throughput of W1 (mlp, batch 128), W3 (resnet20, batch 128) and
W4 (gpt, batch 16x128) with the global batch split over the ranks, 1 thread per rank: the
counterpart of neurite's data-parallel runs (docs/distributed.md).

    torchrun --nproc_per_node 2 bench/pytorch/ddp.py W1 W3 W4 [--steps N]
    torchrun --nproc_per_node 1 bench/pytorch/ddp.py W1 W3 W4      # the 1-rank baseline

Rank 0 prints one line per workload: the global rate (images/s or tokens/s) over the timed
steps, after 2 warm-up steps. Synthetic inputs (timing only).
"""

import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build  # noqa: E402

WORKLOADS = {
    "W1": ("mlp", 128, "images/s"),
    "W3": ("resnet20", 128, "images/s"),
    "W4": ("gpt", 16, "tokens/s"),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workloads", nargs="*", default=["W1", "W3", "W4"])
    p.add_argument("--steps", type=int, default=0, help="timed steps (default: W1 100, W3 5, W4 10)")
    a = p.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    for wid in a.workloads:
        name, batch, unit = WORKLOADS[wid]
        torch.manual_seed(0)
        model = build(name).train()
        ddp = DDP(model)
        # The spec's optimizers of W1, W3 and W4 (as bench.py and `neurite bench`).
        if name == "gpt":
            opt = torch.optim.AdamW(ddp.parameters(), lr=3e-4, weight_decay=0.1)
        elif name == "resnet20":
            opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        else:
            opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
        local = batch // world
        g = torch.Generator().manual_seed(rank)
        if name == "gpt":
            T = model.block_size
            x = torch.randint(0, 256, (local, T), generator=g)
            y = torch.randint(0, 256, (local, T), generator=g)
            per_step = batch * T
        else:
            # Fashion-MNIST's shape, as `neurite bench` (flattened by the mlp itself).
            shape = (local, 1, 28, 28)
            x = torch.randn(shape, generator=g)
            y = torch.randint(0, 10, (local,), generator=g)
            per_step = batch
        steps = a.steps or {"W1": 100, "W3": 5, "W4": 10}[wid]

        def step():
            opt.zero_grad(set_to_none=True)
            if name == "gpt":
                _, loss = ddp(x, y)
            else:
                loss = F.cross_entropy(ddp(x), y)
            loss.backward()
            opt.step()

        for _ in range(2):
            step()
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        dist.barrier()
        secs = time.perf_counter() - t0
        if rank == 0:
            print(f"{wid} {name} {world} rank(s), global batch {batch}: {steps * per_step / secs:,.0f} {unit}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
