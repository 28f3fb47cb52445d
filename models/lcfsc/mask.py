"""CSI fusion masking: the NI-CFMA attention, its mask generator and the R-CVAE that picks the
mask ratio.

NI-CFMA (non-invasive CSI fusion multi-head attention) keeps Q, K, V of plain attention and
multiplies the logits ``QK^T`` by a 0/1 mask ``M`` that hides the ``m D^2`` lowest-scored
pairs, with a learnable temperature in place of ``sqrt(d)``. The scores come from the mask
generator: a gated residual network (GRN) on the features gives each token's importance; a
CNN on the fed-back H and the post-MMSE SINR of the stream each token will ride on (both
known to a transmitter that has H) give the channel's side; their concatenation scores every
(query, key) pair; softmax, then the ascending order decides what is masked.

The hard mask has no gradient, so the generator learns through a straight-through estimator:
``M = hard + soft - soft.detach()`` with ``soft = sigmoid((S - tau) / t)``, ``tau`` the
per-sample threshold at position ``m D^2`` of the sorted scores (linearly interpolated, so the
ratio ``m`` itself gets a gradient).

R-CVAE: a proxy encoder (the same transmitter, run without gradient at the stable ratio m0)
gives the proxy codeword ``y_bar``; the posterior net ``d_a(y_bar, m0)`` and the prior net
``d_s(m0)`` give Gaussians over a latent z; ``d_p(z)`` reconstructs ``y_bar`` (MSE) and the
KL between the two Gaussians regularises; ``d_q(z)`` weights the preset ratios, ``m* = M_bar
beta``. The reconstruction loss pulls on the transmitter's gradient only through ``m*``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

PRESETS = (0.001, 0.003, 0.005, 0.007, 0.009, 0.012, 0.014, 0.015)  # the paper's M_bar
STABLE_RATIO = 0.009


class GRN(nn.Module):
    """Gated residual network: ``LN(skip(x) + GLU(W1 ELU(W2 x)))``."""

    def __init__(self, dim: int, hidden: int, out: int) -> None:
        super().__init__()
        self.fc2 = nn.Linear(dim, hidden)
        self.fc1 = nn.Linear(hidden, 2 * out)
        self.skip = nn.Linear(dim, out) if dim != out else nn.Identity()
        self.norm = nn.LayerNorm(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, g = self.fc1(nn.functional.elu(self.fc2(x))).chunk(2, -1)
        return self.norm(self.skip(x) + a * torch.sigmoid(g))


class CsiEmbed(nn.Module):
    """CNN on the padded H ``[B, 3, 8, 8]`` -> ``[B, out]``."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ELU(),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ELU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(16, out),
        )

    def forward(self, hp: torch.Tensor) -> torch.Tensor:
        return self.net(hp)


class MaskGenerator(nn.Module):
    """Pairwise scores ``S [B, D, D]`` from token features and the channel."""

    def __init__(self, dim: int, feat: int = 16, rank: int = 8) -> None:
        super().__init__()
        self.grn = GRN(dim, 2 * feat, feat)
        self.csi = CsiEmbed(feat)
        self.mix = nn.Sequential(nn.Linear(2 * feat + 1, 2 * feat), nn.ELU(), nn.Linear(2 * feat, 2 * rank))
        self.rank = rank

    def forward(self, x: torch.Tensor, hp: torch.Tensor, token_sinr: torch.Tensor) -> torch.Tensor:
        """``x [B, D, C]``, ``hp [B, 3, 8, 8]``, ``token_sinr [B, D]`` (dB) -> ``S [B, D, D]``."""
        imp = self.grn(x)
        c = self.csi(hp)[:, None].expand(-1, x.shape[1], -1)
        a, b = self.mix(torch.cat([imp, c, token_sinr[..., None] / 10.0], -1)).chunk(2, -1)
        s = a @ b.transpose(1, 2) / math.sqrt(self.rank)
        return torch.softmax(s.flatten(1), -1).view_as(s)


def ratio_mask(scores: torch.Tensor, m: torch.Tensor, sharpness: float = 0.05) -> torch.Tensor:
    """0/1 mask ``[B, D, D]`` hiding the ``m D^2`` lowest scores (straight-through gradient to
    the scores and to ``m [B]``)."""
    b = scores.shape[0]
    flat = scores.flatten(1)
    n = flat.shape[1]
    srt = flat.sort(1).values
    raw = m.clamp(0, 1) * n - 0.5
    pos = raw.clamp(0, n - 1.001)
    lo = pos.detach().floor().long()
    frac = pos - lo.float()
    idx = torch.arange(b, device=scores.device)
    tau = srt[idx, lo] * (1 - frac) + srt[idx, lo + 1] * frac  # between the last masked and first kept
    # Scores are softmax outputs ~1/D^2: compare in units of their spread so ``sharpness`` means
    # the same for every sample.
    spread = flat.std(1, keepdim=True).clamp_min(1e-12)
    soft = torch.sigmoid((flat - tau[:, None]) / (sharpness * spread))
    hard = (flat > tau[:, None]).float()
    hard = torch.where((raw < 0)[:, None], torch.ones_like(hard), hard)  # m D^2 < 1/2: hide none
    return (hard + soft - soft.detach()).view_as(scores)


class CfmaAttention(nn.Module):
    """NI-CFMA over one window covering the whole ``D``-token map (the bottleneck stage)."""

    def __init__(self, dim: int, heads: int, wh: int, ww: int) -> None:
        super().__init__()
        from models.common.swin import _relative_index

        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("rel_index", _relative_index(wh, ww), persistent=False)
        # learnable temperature rho in place of sqrt(d) (log-parametrised to stay positive)
        self.log_rho = nn.Parameter(torch.tensor(0.5 * math.log(dim // heads)))
        self.generator = MaskGenerator(dim)

    def forward(self, x: torch.Tensor, ctx: dict) -> torch.Tensor:
        """``x [B, D, C]``; ``ctx``: ``hp``, ``token_sinr``, ``ratio [B]`` (None -> no mask)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-2, -1)  # [B, heads, D, D]
        if ctx.get("ratio") is not None:
            mask = ratio_mask(self.generator(x, ctx["hp"], ctx["token_sinr"]), ctx["ratio"])
            logits = logits * mask[:, None]
            ctx.setdefault("masks", []).append(mask.detach())
        bias = self.bias_table[self.rel_index].permute(2, 0, 1)
        att = torch.softmax(logits / self.log_rho.exp() + bias, -1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, n, c))


class RCVAE(nn.Module):
    """Conditional VAE that turns the proxy codeword into a mask ratio over :data:`PRESETS`."""

    def __init__(self, code: int, latent: int = 16, hidden: int = 256) -> None:
        super().__init__()
        self.d_a = nn.Sequential(nn.Linear(code + 1, hidden), nn.ELU(), nn.Linear(hidden, 2 * latent))
        self.d_s = nn.Sequential(nn.Linear(1, 32), nn.ELU(), nn.Linear(32, 2 * latent))
        self.d_p = nn.Sequential(nn.Linear(latent + 1, hidden), nn.ELU(), nn.Linear(hidden, code))
        self.d_q = nn.Sequential(nn.Linear(latent, 64), nn.ELU(), nn.Linear(64, len(PRESETS)))
        self.register_buffer("presets", torch.tensor(PRESETS))

    def forward(self, y_bar: torch.Tensor, m0: float = STABLE_RATIO) -> tuple[torch.Tensor, torch.Tensor]:
        """``(m* [B], L_c)``; sampling in training, the posterior mean in eval."""
        b = y_bar.shape[0]
        cond = torch.full((b, 1), m0 / 0.01, device=y_bar.device)  # scaled to ~1
        mu_q, ls_q = self.d_a(torch.cat([y_bar, cond], 1)).chunk(2, -1)
        mu_p, ls_p = self.d_s(cond).chunk(2, -1)
        z = mu_q + torch.randn_like(mu_q) * (0.5 * ls_q).exp() if self.training else mu_q
        rec = nn.functional.mse_loss(self.d_p(torch.cat([z, cond], 1)), y_bar)
        # KL(N(mu_q, e^ls_q) || N(mu_p, e^ls_p)), ls = log variance
        kl = 0.5 * (ls_p - ls_q + (ls_q.exp() + (mu_q - mu_p) ** 2) / ls_p.exp() - 1).sum(-1).mean()
        beta = torch.softmax(self.d_q(z), -1)
        return beta @ self.presets, rec + kl
