"""The reference models of docs/models.md in PyTorch.

Parameter names and layouts are exactly the spec's, so a state_dict saved here
loads into neurite and the other way round. Initialization is PyTorch's default
for mlp, lenet5 and resnet20, nanoGPT's (normal 0.02, scaled residual
projections) for gpt, and the same for vit.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class MLP(nn.Module):
    """fc1 784->512, ReLU, fc2 512->256, ReLU, fc3 256->10; the input is flattened."""

    def __init__(self, inputs=784, classes=10):
        super().__init__()
        self.fc1 = nn.Linear(inputs, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, classes)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling."""

    def __init__(self, channels=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # [N, 6, 14, 14]
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # [N, 16, 5, 5]
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """CIFAR ResNet-20 (He et al. 2016) with projection shortcuts."""

    def __init__(self, channels=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._layer(16, 16, 1)
        self.layer2 = self._layer(16, 32, 2)
        self.layer3 = self._layer(32, 64, 2)
        self.fc = nn.Linear(64, classes)

    @staticmethod
    def _layer(cin, cout, stride):
        return nn.Sequential(
            BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1), BasicBlock(cout, cout, 1)
        )

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))  # [N, 16, 28, 28]
        x = self.layer3(self.layer2(self.layer1(x)))  # [N, 64, 7, 7]
        x = x.mean(dim=(2, 3))  # [N, 64]
        return self.fc(x)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention; `c_attn` output splits into q, k, v in that order."""

    def __init__(self, n_embd, n_head, causal):
        super().__init__()
        assert n_embd % n_head == 0
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.n_head = n_head
        self.causal = causal

    def _heads(self, t, B, T, C):
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # [B, H, T, hd]

    def forward(self, x, kv_cache=None):
        """`kv_cache`: None, or a dict holding 'k' and 'v' [B, H, T_past, hd]; updated in place."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = self._heads(q, B, T, C), self._heads(k, B, T, C), self._heads(v, B, T, C)
        if kv_cache is not None:
            if "k" in kv_cache:
                k = torch.cat([kv_cache["k"], k], dim=2)
                v = torch.cat([kv_cache["v"], v], dim=2)
            kv_cache["k"], kv_cache["v"] = k, v
        # Causal only when queries and keys are the same positions; one new
        # query against a cache attends to all cached keys.
        causal = self.causal and q.shape[2] == k.shape[2]
        if self.causal and not causal and q.shape[2] > 1:
            raise ValueError("prefill with a non-empty cache is not supported")
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # [B, H, T, hd]
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLPBlock(nn.Module):
    def __init__(self, n_embd, hidden):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, hidden)
        self.c_proj = nn.Linear(hidden, n_embd)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))  # exact (erf) GELU


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, n_embd, n_head, hidden, causal):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=1e-5)
        self.attn = CausalSelfAttention(n_embd, n_head, causal)
        self.ln_2 = nn.LayerNorm(n_embd, eps=1e-5)
        self.mlp = MLPBlock(n_embd, hidden)

    def forward(self, x, kv_cache=None):
        x = x + self.attn(self.ln_1(x), kv_cache)
        return x + self.mlp(self.ln_2(x))


def _gpt_style_init(model, n_layer):
    """nanoGPT's initialization: N(0, 0.02) weights, zero biases, residual projections / sqrt(2L)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))


class GPT(nn.Module):
    """Character-level GPT in nanoGPT's layout; `lm_head.weight` is tied to `transformer.wte.weight`."""

    def __init__(self, vocab=256, block_size=128, n_layer=4, n_head=4, n_embd=128):
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(vocab, n_embd),
                wpe=nn.Embedding(block_size, n_embd),
                h=nn.ModuleList(
                    [Block(n_embd, n_head, 4 * n_embd, causal=True) for _ in range(n_layer)]
                ),
                ln_f=nn.LayerNorm(n_embd, eps=1e-5),
            )
        )
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        _gpt_style_init(self, n_layer)
        self.lm_head.weight = self.transformer.wte.weight  # tied after init

    def forward(self, idx, targets=None, kv_caches=None, pos0=0):
        """idx [B, T] -> logits [B, T, vocab] (and the mean loss when targets are given)."""
        B, T = idx.shape
        assert pos0 + T <= self.block_size, "sequence longer than block_size"
        pos = torch.arange(pos0, pos0 + T, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)  # [B, T, C]
        for i, block in enumerate(self.transformer.h):
            x = block(x, None if kv_caches is None else kv_caches[i])
        logits = self.lm_head(self.transformer.ln_f(x))  # [B, T, vocab]
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, use_cache=True, generator=None):
        """Samples `max_new_tokens` bytes after `idx` [B, T].

        Both paths sample the same distribution as nanoGPT's `generate`: each
        new byte is predicted from the last `block_size` bytes, positions counted
        from the start of that window. Without `use_cache` each step re-runs the
        cropped context (nanoGPT). With it, keys and values are kept per layer
        and each step runs one token while the sequence fits in the window; once
        the window slides, positions shift and a cache cannot be reused, so each
        step re-runs the full window.
        """
        caches, cached_len = None, 0
        for _ in range(max_new_tokens):
            if not use_cache:
                logits = self(idx[:, -self.block_size:])[:, -1, :]
            elif caches is None or cached_len >= self.block_size:
                ctx = idx[:, -self.block_size:]
                caches = [dict() for _ in self.transformer.h]
                logits = self(ctx, kv_caches=caches)[:, -1, :]
                cached_len = ctx.shape[1]
            else:
                logits = self(idx[:, -1:], kv_caches=caches, pos0=cached_len)[:, -1, :]
                cached_len += 1
            probs = F.softmax(logits / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)  # [B, 1]
            idx = torch.cat([idx, nxt], dim=1)
        return idx


class ViT(nn.Module):
    """Small vision transformer: 4x4 patches, class token, 6 pre-norm blocks, head on the class token."""

    def __init__(self, channels=1, classes=10, dim=64, depth=6, heads=4, hidden=128, patch=4, image=28):
        super().__init__()
        n = (image // patch) ** 2
        self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, hidden, causal=False) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(dim, eps=1e-5)
        self.head = nn.Linear(dim, classes)
        _gpt_style_init(self, depth)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # [N, 49, dim]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # [N, 50, dim]
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x[:, 0]))


PARAMETER_COUNTS = {
    "mlp": 535_818,
    "lenet5": 61_706,
    "resnet20": 272_186,
    "gpt": 842_496,
    "vit": 205_962,
}

IMAGE_MODELS = ("mlp", "lenet5", "resnet20", "vit")


def build(name, channels=1, classes=10):
    """Builds a model of the spec by name."""
    if name == "mlp":
        return MLP(channels * 28 * 28, classes)
    if name == "lenet5":
        return LeNet5(channels, classes)
    if name == "resnet20":
        return ResNet20(channels, classes)
    if name == "vit":
        return ViT(channels, classes)
    if name == "gpt":
        return GPT()
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(PARAMETER_COUNTS)}")


def num_parameters(model):
    """Parameter count with shared (tied) tensors counted once."""
    return sum(p.numel() for p in model.parameters())  # parameters() deduplicates


def state_dict_for_safetensors(model):
    """state_dict with every tensor contiguous and unshared (lm_head.weight becomes a copy)."""
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def load_state_dict_from_safetensors(model, tensors):
    """Strict load; for gpt a missing `lm_head.weight` is read as tied."""
    tensors = dict(tensors)
    if isinstance(model, GPT) and "lm_head.weight" not in tensors:
        tensors["lm_head.weight"] = tensors["transformer.wte.weight"]
    model.load_state_dict(tensors, strict=True)
    if isinstance(model, GPT):
        model.lm_head.weight = model.transformer.wte.weight  # keep the tie after loading
    return model


if __name__ == "__main__":
    for name, expected in PARAMETER_COUNTS.items():
        m = build(name)
        got = num_parameters(m)
        assert got == expected, f"{name}: {got} parameters, spec says {expected}"
        print(f"{name:<9} {got:>9,} parameters  ok")
