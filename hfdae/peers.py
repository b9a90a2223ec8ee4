"""Peer denoisers for side-by-side benchmarks: DnCNN, FFDNet (published weights) and BM3D.

The weights are not part of hfdae: the loaders take a path to the published PyTorch state dicts (for
example the KAIR-format files described in this project's ``../shared/peers/README.md``) and load them
strictly with ``torch.load(weights_only=True)``.

- DnCNN (Zhang et al., "Beyond a Gaussian Denoiser", TIP 2017): ``depth`` 3x3 convolutions of width 64
  with ReLU between (batch norm already folded into the convolutions' biases), residual output
  ``x - net(x)``. DnCNN-S has 17 layers, DnCNN-B and CDnCNN-B 20.
- FFDNet (Zhang et al., "FFDNet: Toward a Fast and Flexible Solution for CNN based Image Denoising",
  TIP 2018): replicate-pad to even size, pixel-unshuffle by 2, append a constant noise-level map,
  12 convolutions (96 wide for colour), pixel-shuffle back, crop; the network outputs the clean image.
- BM3D / CBM3D (Dabov et al. 2007) through the ``bm3d`` package, given the true noise sigma.

Every peer takes and returns float tensors [B, C, H, W] in [0, 1].
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DnCNN", "FFDNet", "load_dncnn", "load_ffdnet", "bm3d_denoise"]


class DnCNN(nn.Module):
    """DnCNN with batch norm folded: ``depth`` convolutions, ReLU between, residual output.

    Args:
        channels: image channels (1 gray, 3 colour).
        depth: number of convolutions (17 for DnCNN-S, 20 for DnCNN-B / CDnCNN-B).
        width: feature width (64).
    """

    def __init__(self, channels: int = 3, depth: int = 20, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.model = nn.Sequential(*layers)  # keys model.0, model.2, ... as in the published files

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        return noisy - self.model(noisy)


class FFDNet(nn.Module):
    """FFDNet: a non-blind denoiser working at half resolution on 4 sub-images plus a noise-level map.

    Args:
        channels: image channels (1 gray, 3 colour).
        depth: number of convolutions (12 for colour, 15 for gray).
        width: feature width (96 for colour, 64 for gray).
        sigma: the noise level (in [0, 255] units) used when ``forward`` is not given one.
    """

    def __init__(self, channels: int = 3, depth: int = 12, width: int = 96, sigma: float = 25.0) -> None:
        super().__init__()
        self.sigma = sigma
        sub_channels = channels * 4
        layers: list[nn.Module] = [nn.Conv2d(sub_channels + 1, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, sub_channels, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, noisy: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        sigma = self.sigma if sigma is None else sigma
        height, width = noisy.shape[-2:]
        padded = F.pad(noisy, (0, width % 2, 0, height % 2), mode="replicate")
        sub_images = F.pixel_unshuffle(padded, 2)
        noise_map = torch.full_like(sub_images[:, :1], sigma / 255)
        restored = F.pixel_shuffle(self.model(torch.cat([sub_images, noise_map], dim=1)), 2)
        return restored[..., :height, :width]


def _load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a PyTorch state dict of tensors")
    return state


def _conv_shapes(state: dict[str, torch.Tensor]) -> list[torch.Size]:
    indices = sorted(int(m.group(1)) for key in state if (m := re.fullmatch(r"model\.(\d+)\.weight", key)))
    if not indices:
        raise ValueError("state dict has no model.N.weight keys (expected the KAIR layout)")
    return [state[f"model.{index}.weight"].shape for index in indices]


def load_dncnn(path: str | Path) -> DnCNN:
    """Build a :class:`DnCNN` matching a published state dict (depth and channels read from it) and load it strictly."""
    state = _load_state_dict(path)
    shapes = _conv_shapes(state)
    model = DnCNN(channels=shapes[0][1], depth=len(shapes), width=shapes[0][0])
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_ffdnet(path: str | Path, sigma: float = 25.0) -> FFDNet:
    """Build an :class:`FFDNet` matching a published state dict and load it strictly."""
    state = _load_state_dict(path)
    shapes = _conv_shapes(state)
    channels = shapes[-1][0] // 4
    model = FFDNet(channels=channels, depth=len(shapes), width=shapes[0][0], sigma=sigma)
    model.load_state_dict(state, strict=True)
    return model.eval()


def bm3d_denoise(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """BM3D (gray) or CBM3D (colour) from the ``bm3d`` package, given the noise ``sigma`` in [0, 255] units.

    Args:
        noisy: [B, C, H, W] in [0, 1] (values outside are kept: the noisy input is not clipped).
        sigma: the true noise standard deviation, in [0, 255] units.
    """
    try:
        import bm3d
    except ImportError as error:  # an optional extra: only the benchmarks need it
        raise ImportError("the BM3D baseline needs the bm3d package: pip install bm3d") from error
    outputs = []
    for image in noisy.detach().cpu().double():
        array = image.permute(1, 2, 0).numpy()
        if array.shape[2] == 3:
            restored = bm3d.bm3d_rgb(array, sigma / 255)
        else:
            restored = bm3d.bm3d(array[:, :, 0], sigma / 255)[:, :, None]
        outputs.append(torch.from_numpy(restored).permute(2, 0, 1).float())
    return torch.stack(outputs).to(noisy.device)
