"""Pre-trained weights: torchvision's ImageNet checkpoints, or a local checkpoint file.

``cnnbook.get_model(name, weights=...)`` calls :func:`load_weights`. ``weights`` is one of

- ``"DEFAULT"`` or the name of a member of torchvision's weights enum (``"IMAGENET1K_V1"``), for networks
  whose registry entry names a torchvision architecture (``ModelInfo.torchvision``). Our networks use
  torchvision's attribute names, so torchvision's checkpoint loads with ``strict=True``. The file is read
  from the torch hub cache (``torch.hub.get_dir()/checkpoints/<file>``) and downloaded there only when
  it is missing and the machine is online; offline (``CNNBOOK_OFFLINE=1``, or a failed download) the
  error names the URL to fetch and the exact path to put the file at.
- a path to a local checkpoint: a state dict saved with ``torch.save(model.state_dict(), path)``, or a
  dict holding one under ``"state_dict"`` or ``"model"`` (what training scripts usually save).

Files are read with ``torch.load(..., weights_only=True)``, which refuses arbitrary pickled code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import torch
from torch import nn

from .config import offline
from .registry import ModelInfo

__all__ = [
    "WeightsUnavailableError",
    "CheckpointMismatchError",
    "load_weights",
    "load_checkpoint",
    "torchvision_weights",
    "hub_checkpoint_path",
]

_ENUM_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")  # DEFAULT, IMAGENET1K_V1, ...


class WeightsUnavailableError(RuntimeError):
    """torchvision's checkpoint is not in the local cache and cannot be downloaded."""

    def __init__(self, url: str, path: str, reason: str) -> None:
        self.url = url
        self.path = path
        super().__init__(
            f"Pre-trained weights are not available offline ({reason}).\n"
            f"  Download: {url}\n"
            f"  Save it as: {path}\n"
            f"(for example `curl -L -o {path} {url}` on a machine with internet access, then copy the file). "
            f"Alternatively, pass the path of a local checkpoint: get_model(name, weights='path/to/file.pth')."
        )


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's keys or shapes do not match the model."""


def hub_checkpoint_path(url: str) -> str:
    """Where ``torch.hub`` keeps the file of ``url``: ``torch.hub.get_dir()/checkpoints/<file name>``."""
    filename = os.path.basename(urlparse(url).path)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def torchvision_weights(info: ModelInfo, weights: str) -> Any:
    """The torchvision weights enum member ``weights`` ("DEFAULT" or a member name) of ``info``'s architecture."""
    if not info.torchvision:
        raise ValueError(
            f"{info.name!r} has no torchvision counterpart, so no pre-trained weights named {weights!r} exist "
            f"for it; only local checkpoints are available: get_model({info.name!r}, weights='path/to/file.pth')."
        )
    import torchvision

    enum = torchvision.models.get_model_weights(info.torchvision)
    if weights == "DEFAULT":
        return enum.DEFAULT
    names = [member.name for member in enum]
    if weights not in names:
        raise ValueError(
            f"torchvision has no weights {weights!r} for {info.torchvision}; choose one of "
            f"{', '.join(['DEFAULT', *names])}, or pass the path of a local checkpoint."
        )
    return enum[weights]


def _read(path: str | os.PathLike[str]) -> Mapping[str, torch.Tensor]:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointMismatchError(
            f"{os.fspath(path)} does not hold a state dict (a mapping of names to tensors); save one with "
            f"torch.save(model.state_dict(), path), or a dict with it under 'state_dict' or 'model'."
        )
    keys = list(obj)
    if keys and all(k.startswith("module.") for k in keys):  # saved from nn.DataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _fetch_torchvision(member: Any) -> dict[str, torch.Tensor]:
    url = member.url
    path = hub_checkpoint_path(url)
    if os.path.exists(path):
        return dict(_read(path))
    if offline():
        raise WeightsUnavailableError(url, path, "CNNBOOK_OFFLINE is set and the file is not in the cache")
    try:
        state = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True, weights_only=True)
    except Exception as error:  # no network, proxy, HTTP error, interrupted download
        raise WeightsUnavailableError(url, path, f"the download failed: {error}") from error
    return dict(state)


# Old torchvision DenseNet checkpoints name layers "norm.1" where the modules are now "norm1".
_DENSENET_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
_AUX_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")


def _adapt_torchvision(model: nn.Module, state: dict[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """What torchvision's own builders do to their checkpoints before loading them."""
    if arch.startswith("densenet"):
        state = {(_DENSENET_KEY.sub(r"\1\2", k)): v for k, v in state.items()}
    if arch in ("googlenet", "inception_v3"):
        # The checkpoints hold the auxiliary heads; a model built with aux_logits=False has none. The weights
        # were trained on inputs scaled to [-1, 1], so torchvision switches transform_input on: we do too.
        own = set(model.state_dict())
        state = {k: v for k, v in state.items() if k in own or not k.startswith(_AUX_PREFIXES)}
        if hasattr(model, "transform_input"):
            model.transform_input = True  # type: ignore[assignment]
    return state


def load_checkpoint(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state, strict=True)``, with an error that lists what does not match."""
    own = model.state_dict()
    # Old checkpoints (torchvision's DenseNet, AlexNet, VGG files) predate BatchNorm's num_batches_tracked
    # counter; load_state_dict fills it in when the state dict carries no version metadata, as a plain dict.
    state = dict(state)
    missing = [k for k in own if k not in state and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if not (missing or unexpected or wrong):
        model.load_state_dict(state, strict=True)
        return

    def first(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")

    lines = [f"The checkpoint {source} does not fit {type(model).__name__}:"]
    if missing:
        lines.append(f"  missing keys (in the model, not in the checkpoint): {first(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys (in the checkpoint, not in the model): {first(unexpected)}")
    for key in wrong[:5]:
        lines.append(f"  {key}: checkpoint shape {tuple(state[key].shape)}, model shape {tuple(own[key].shape)}")
    classifier = getattr(model, "classifier_path", None)
    if wrong and classifier and all(k.startswith(classifier + ".") for k in wrong):
        saved = state[wrong[0]].shape[0]
        built = getattr(model, "num_classes", own[wrong[0]].shape[0])
        lines.append(
            f"Only the classifier differs: the checkpoint has {saved} classes and the model {built}. Build the "
            f"model with num_classes={saved} to load it, then call model.reset_classifier({built}) to fine-tune."
        )
    elif wrong:
        lines.append("Shapes differ: was the checkpoint saved from the same network with the same arguments "
                     "(num_classes, in_channels, width)?")
    raise CheckpointMismatchError("\n".join(lines))


def _is_enum_name(weights: Any) -> bool:
    return isinstance(weights, str) and bool(_ENUM_NAME.match(weights)) and not os.path.exists(weights)


def load_weights(model: nn.Module, info: ModelInfo, weights: str | os.PathLike[str]) -> nn.Module:
    """Load ``weights`` into ``model`` (built from registry entry ``info``) in place, and return it.

    ``weights``: ``"DEFAULT"`` or a torchvision enum member name for a network with a torchvision
    counterpart, or a path to a local checkpoint.

    Raises:
        ValueError: a weights name for a network without a torchvision counterpart, or an unknown name.
        WeightsUnavailableError: torchvision's file is not cached and cannot be downloaded.
        FileNotFoundError: the local checkpoint does not exist.
        CheckpointMismatchError: the checkpoint's keys or shapes do not match the model.
    """
    if _is_enum_name(weights):
        member = torchvision_weights(info, str(weights))
        state = _adapt_torchvision(model, _fetch_torchvision(member), str(info.torchvision))
        load_checkpoint(model, state, f"torchvision {info.torchvision} {member.name} ({member.url})")
        return model
    path = Path(weights)
    if not path.is_file():
        hint = " Pre-trained names look like 'DEFAULT' or 'IMAGENET1K_V1'." if isinstance(weights, str) else ""
        raise FileNotFoundError(f"No checkpoint file at {os.fspath(path)!r}.{hint}")
    load_checkpoint(model, _read(path), os.fspath(path))
    return model
