"""Training on several processes with torch.distributed (``torchrun``), as NVIDIA's StyleGAN2-ADA does it.

Every process holds full copies of G, D, G_ema and the optimizers and computes its share of each
global batch; after each backward pass the gradients are summed across processes in one flat
all-reduce and divided by the number of processes, so every optimizer step is the same everywhere.
This is what ``DistributedDataParallel`` computes. The wrapper itself is not used: each phase
runs G and D forward several times per backward pass (fakes, R1 and path length graphs), toggles
``requires_grad`` between phases and skips lazy-regularization phases on most iterations,
which the wrapper's bucketed hooks do not handle.

Running statistics (the tracked w_avg, path length mean, StyleGAN3's magnitudes, batch-norm
running stats) are averaged across processes after every iteration, and batch norm layers become
``SyncBatchNorm``, so the ranks never drift apart.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


#: whether this process joined a process group (the entry point then leaves with os._exit: see cli.entry)
joined = False


def init(device_type: str) -> None:
    """Joins the process group (NCCL on CUDA, gloo otherwise) unless already joined."""
    global joined
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        joined = True


def _all_reduce_mean(tensors: list[torch.Tensor], world: int) -> list[torch.Tensor]:
    """The mean over processes of each tensor, through one flat all-reduce."""
    flat = torch.cat([t.flatten() for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    return [v.view_as(t) for v, t in zip(flat.split([t.numel() for t in tensors]), tensors)]


def all_gather_cat(x: torch.Tensor, world: int) -> torch.Tensor:
    """Every process's ``x`` (the same shape on each), concatenated in rank order on dimension 0."""
    if world <= 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def all_reduce_mean_grads(module: nn.Module, world: int) -> None:
    """Averages the gradients of ``module`` over processes in one flat all-reduce."""
    params = [p for p in module.parameters() if p.grad is not None]
    if world <= 1 or not params:
        return
    for p, g in zip(params, _all_reduce_mean([p.grad for p in params], world)):
        p.grad.copy_(g)


def buffer_state(modules) -> dict[str, torch.Tensor]:
    """Copies of every buffer of ``modules`` by (module index, name)."""
    return {f"{i}.{k}": b.detach().clone() for i, m in enumerate(modules) for k, b in m.named_buffers()}


def _buffers(modules) -> dict[str, torch.Tensor]:
    # looked up afresh each time: a loss may assign a new tensor to a buffer's name (G.pl_mean = ...)
    return {f"{i}.{k}": b for i, m in enumerate(modules) for k, b in m.named_buffers()}


@torch.no_grad()
def average_buffers(modules, base: dict[str, torch.Tensor], world: int) -> None:
    """Running statistics become ``base`` plus the mean over processes of each process's change
    since ``base`` (constant buffers, whose change is 0 everywhere, stay bit-identical)."""
    if world <= 1:
        return
    bufs = {k: b for k, b in _buffers(modules).items() if b.is_floating_point()}
    if not bufs:
        return
    deltas = _all_reduce_mean([b - base[k] for k, b in bufs.items()], world)
    for (k, b), d in zip(bufs.items(), deltas):
        b.copy_(base[k] + d)


class RoundBuffers:
    """Gradient accumulation with running statistics: every round starts from the buffers the
    phase started with, and the phase ends with the mean of the rounds' changes (integer counters:
    the first round's), as processes do; so k rounds on one process equal k processes."""

    def __init__(self, modules):
        self.modules = modules
        self.base = buffer_state(modules)
        self.delta: dict[str, torch.Tensor] = {}
        self.first: dict[str, torch.Tensor] = {}
        self.rounds = 0

    @torch.no_grad()
    def end_round(self) -> None:
        for k, b in _buffers(self.modules).items():
            if b.is_floating_point():
                d = b - self.base[k]
                self.delta[k] = d if k not in self.delta else self.delta[k] + d
            elif k not in self.first:
                self.first[k] = b.clone()
            b.copy_(self.base[k])
        self.rounds += 1

    @torch.no_grad()
    def finish(self) -> None:
        for k, b in _buffers(self.modules).items():
            if k in self.delta:
                b.copy_(self.base[k] + self.delta[k] / self.rounds)
            elif k in self.first:
                b.copy_(self.first[k])


@torch.no_grad()
def max_divergence(modules) -> float:
    """Largest absolute difference of any parameter or buffer from rank 0's (0.0 when identical)."""
    tensors = [t for m in modules for t in list(m.parameters()) + list(m.buffers()) if t.is_floating_point()]
    flat = torch.cat([t.detach().flatten().float() for t in tensors])
    ref = flat.clone()
    dist.broadcast(ref, 0)
    diff = (flat - ref).abs().max().reshape(1)
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)


def any_flag(flag: bool, world: int, device) -> bool:
    """True on every process when any process has ``flag`` set (a stop request)."""
    if world <= 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the global batch over all processes, for
    backends where ``nn.SyncBatchNorm`` is not available (it needs a GPU; this one runs on gloo).
    The per-channel sums are all-reduced with an autograd-aware collective, so the backward pass
    sees the global statistics too (Ioffe & Szegedy 2015, Algorithm 1, over the global batch)."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        stats = all_reduce(torch.cat([x.sum(dims), x.square().sum(dims), count]))
        C = x.shape[1]
        n = stats[-1]
        mean = stats[:C] / n
        var = (stats[C:2 * C] / n - mean.square()).clamp_min(0)  # biased, as in normalization
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / max(float(n) - 1, 1), m)  # unbiased, as PyTorch
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batchnorm(module: nn.Module, device_type: str = "cpu") -> nn.Module:
    """Batch norm layers whose statistics span the global batch of each pass: ``nn.SyncBatchNorm``
    on CUDA, :class:`CPUSyncBatchNorm` elsewhere (same parameter and buffer names)."""
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CPUSyncBatchNorm):
        out = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        out.load_state_dict(module.state_dict())
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, sync_batchnorm(child, device_type))
    return out
