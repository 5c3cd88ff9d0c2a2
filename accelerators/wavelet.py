"""The wavelet-like auto-encoder of ``wae``: its network, its one-off training, and the cache
that makes it one-off (safetensors + JSON keyed by a fingerprint of the data, no pickle).

Chen et al. (AAAI 2018); :mod:`accelerators.wae` is the accelerator that uses it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from automl.data import Split
from automl.nn.flops import count_flops, training_flops

FORMAT = 1  # bump when the saved encoder's layout changes: old cache entries are then ignored
FINGERPRINT_SAMPLES = 64
BATCH = 64
LR = 5e-3
CACHE_FOLDER = "wae"

_MEMORY: dict[str, tuple[dict[str, Tensor], dict[str, Any]]] = {}  # key -> (weights, metadata)

class WaveletAutoEncoder(nn.Module):
    """Encoder (3 convs, then stride-2 branches to I_L and I_H) and decoder (back to full size)."""

    def __init__(self, channels: int, width: int = 16) -> None:
        super().__init__()
        self.channels = channels
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.low = nn.Conv2d(width, channels, 3, stride=2, padding=1)
        self.high = nn.Conv2d(width, channels, 3, stride=2, padding=1)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, width, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, channels, 3, padding=1),
        )
        # per-channel standardisation of [I_L, I_H], measured on the training split after training
        self.register_buffer("code_mean", torch.zeros(2 * channels))
        self.register_buffer("code_std", torch.ones(2 * channels))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return self.low(h), self.high(h)

    def decode(self, low: Tensor, high: Tensor, size: tuple[int, int]) -> Tensor:
        return self.decoder(torch.cat([low, high], dim=1))[..., :size[0], :size[1]]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        low, high = self.encode(x)
        return self.decode(low, high, x.shape[-2:]), low, high

    def code(self, x: Tensor) -> Tensor:
        """[I_L, I_H] standardised per channel: what the classifier trains on."""
        low, high = self.encode(x)
        code = torch.cat([low, high], dim=1)
        return (code - self.code_mean.view(1, -1, 1, 1)) / self.code_std.view(1, -1, 1, 1)


# -- fingerprints and the cache ---------------------------------------------------------------

def fingerprint(split: Split) -> str:
    """A stable id of an in-memory split: shape, count, and a hash of evenly spaced samples."""
    n = len(split)
    index = torch.linspace(0, n - 1, min(FINGERPRINT_SAMPLES, n)).round().long()
    digest = hashlib.sha256()
    digest.update(repr((tuple(split.x.shape), str(split.x.dtype), n)).encode())
    digest.update(split.x[index.to(split.x.device)].detach().float().cpu().contiguous().numpy().tobytes())
    digest.update(split.y[index.to(split.y.device)].cpu().numpy().tobytes())
    return digest.hexdigest()


def encoder_key(data_fingerprint: str, settings: dict[str, Any]) -> str:
    text = json.dumps({"format": FORMAT, "data": data_fingerprint, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cache_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    folder = Path(cache_dir) / CACHE_FOLDER
    return folder / f"{key}.safetensors", folder / f"{key}.json"


def save_encoder(cache_dir: Path, key: str, encoder: WaveletAutoEncoder, meta: dict[str, Any]) -> Path:
    """Write weights and metadata atomically (temp file + rename), so concurrent workers never
    read a half-written file."""
    from safetensors.torch import save_file

    weights_path, meta_path = cache_paths(cache_dir, key)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp{os.getpid()}"
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(tensors, str(weights_path) + suffix)
    Path(str(meta_path) + suffix).write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(str(weights_path) + suffix, weights_path)
    os.replace(str(meta_path) + suffix, meta_path)
    return weights_path


def load_encoder(cache_dir: Path, key: str) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    from safetensors.torch import load_file

    weights_path, meta_path = cache_paths(cache_dir, key)
    if not (weights_path.is_file() and meta_path.is_file()):
        return None
    return load_file(str(weights_path)), json.loads(meta_path.read_text())


# -- training and encoding --------------------------------------------------------------------

def train_encoder(split: Split, channels: int, width: int = 16, epochs: int = 2, energy: float = 0.1,
                  max_seconds: float = 30.0, seed: int = 0, device: torch.device | str = "cpu"
                  ) -> tuple[WaveletAutoEncoder, dict[str, Any]]:
    """Train a WAE on ``split``'s images; returns it and what training measured."""
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # leave the candidate's RNG stream untouched
        torch.manual_seed(seed)
        encoder = WaveletAutoEncoder(channels, width).to(device)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=LR)
    steps_per_epoch = max(1, len(split) // BATCH)
    total = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    started = time.perf_counter()
    steps = 0
    timed_out = False
    for _ in range(epochs):
        for images, _ in split.batches(BATCH, shuffle=True, generator=generator, drop_last=True, device=device):
            images = images.float()
            recon, _, high = encoder(images)
            loss = F.mse_loss(recon, images) + energy * high.pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            steps += 1
            if time.perf_counter() - started > max_seconds:
                timed_out = True
                break
        if timed_out:
            break
    encoder.eval()
    with torch.no_grad():  # standardise the code channels with training-set statistics
        sums = torch.zeros(2 * channels, dtype=torch.float64, device=device)
        squares = torch.zeros_like(sums)
        count = 0
        for images, _ in split.batches(500, device=device):
            low, high = encoder.encode(images.float())
            code = torch.cat([low, high], dim=1).double()
            sums += code.sum(dim=(0, 2, 3))
            squares += code.pow(2).sum(dim=(0, 2, 3))
            count += code.shape[0] * code.shape[2] * code.shape[3]
        mean = sums / count
        std = (squares / count - mean.pow(2)).clamp_min(1e-12).sqrt()
        encoder.code_mean.copy_(mean.float())
        encoder.code_std.copy_(std.float().clamp_min(1e-4))
    seconds = time.perf_counter() - started
    return encoder, {"steps": steps, "epochs_done": steps / steps_per_epoch, "timed_out": timed_out,
                     "seconds": seconds, "samples": steps * BATCH}


@torch.no_grad()
def reconstruction_error(encoder: WaveletAutoEncoder, split: Split) -> dict[str, float]:
    """Mean squared reconstruction error on ``split`` (normalised units), its PSNR against the
    data's own peak-to-peak range, and the share of code energy in I_H."""
    encoder.eval()
    device = next(encoder.parameters()).device
    squared, low_energy, high_energy, values = 0.0, 0.0, 0.0, 0
    lo, hi = math.inf, -math.inf
    for images, _ in split.batches(500, device=device):
        images = images.float()
        recon, low, high = encoder(images)
        squared += float((recon - images).pow(2).sum())
        low_energy += float(low.pow(2).sum())
        high_energy += float(high.pow(2).sum())
        values += images.numel()
        lo, hi = min(lo, float(images.min())), max(hi, float(images.max()))
    mse = squared / max(values, 1)
    peak = hi - lo
    psnr = 10 * math.log10(peak * peak / mse) if mse > 0 and peak > 0 else math.inf
    return {"mse": mse, "psnr_db": psnr, "high_energy_share": high_energy / max(low_energy + high_energy, 1e-30)}


@torch.no_grad()
def encode_split(encoder: WaveletAutoEncoder, split: Split, batch_size: int = 500) -> Split:
    """The split with images replaced by their standardised [I_L, I_H] codes (no gradients)."""
    encoder.eval()
    device = next(encoder.parameters()).device
    codes = [encoder.code(split.x[i:i + batch_size].to(device).float()) for i in range(0, len(split), batch_size)]
    return Split(y=split.y, x=torch.cat(codes).to(split.x.device))


def encoder_flops(encoder: WaveletAutoEncoder, input_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(encode forward FLOPs, training FLOPs per sample: 3 x (encoder + decoder) forward)."""
    class _Encode(nn.Module):
        def __init__(self, inner: WaveletAutoEncoder) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Tensor) -> Tensor:
            return self.inner.code(x)

    class _Whole(_Encode):
        def forward(self, x: Tensor) -> Tensor:
            return self.inner(x)[0]

    return count_flops(_Encode(encoder), input_shape), training_flops(count_flops(_Whole(encoder), input_shape), 1)
