"""PyTorch version of examples/distributed.rs: a small loop made data-parallel with DDP
(Gloo, CPU) and a DistributedSampler; rank 0 prints the loss averaged over the ranks.

    torchrun --nproc_per_node 2 bench/pytorch/examples/distributed.py --steps 200
"""

import argparse

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DistributedSampler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64, help="the global batch")
    a = p.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(7)
    samples = 4096
    points = torch.randn(samples, 2)
    labels = (points[:, 0] * points[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    ddp = DDP(model)  # broadcasts rank 0's weights
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-2)
    sampler = DistributedSampler(range(samples), num_replicas=world, rank=rank, seed=1)
    local = a.batch_size // world
    per_epoch = len(sampler) // local
    for step in range(a.steps):
        epoch, b = divmod(step, per_epoch)
        sampler.set_epoch(epoch)
        mine = list(sampler)[b * local:(b + 1) * local]
        loss = F.cross_entropy(ddp(points[mine]), labels[mine])
        opt.zero_grad()
        loss.backward()  # DDP averages the gradients over the ranks
        opt.step()
        l = loss.detach().clone()
        dist.all_reduce(l)
        if rank == 0 and (step + 1) % 50 == 0:
            print(f"step {step + 1:>4}  loss {l.item() / world:.4f}  ({world} ranks)")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
