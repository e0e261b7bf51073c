"""Loading weights: local checkpoints, torchvision checkpoints from the hub cache, and clear errors offline.

Nothing here touches the network: torchvision-format files are written into a temporary TORCH_HOME.
"""

from __future__ import annotations

import os
import re
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

import cnnbook
from cnnbook.weights import CheckpointMismatchError, WeightsUnavailableError, hub_checkpoint_path

ALL = cnnbook.list_models()


def _outputs(model: torch.nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    torch.manual_seed(1)
    with torch.no_grad():
        return model.eval()(torch.randn(2, *shape))


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache in a temporary TORCH_HOME, offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("CNNBOOK_OFFLINE", "1")
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    checkpoints.mkdir(parents=True)
    return checkpoints


def _cache(tv_name: str, state: dict[str, torch.Tensor], weights: str = "DEFAULT") -> str:
    enum = torchvision.models.get_model_weights(tv_name)
    url = (enum.DEFAULT if weights == "DEFAULT" else enum[weights]).url
    path = hub_checkpoint_path(url)
    torch.save(state, path)
    return path


# ---- local checkpoints -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_local_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    info = cnnbook.get_model_info(name)
    original = cnnbook.get_model(name)
    path = tmp_path / f"{name}.pth"
    torch.save(original.state_dict(), path)
    loaded = cnnbook.get_model(name, weights=str(path))
    torch.testing.assert_close(_outputs(loaded, info.input_size), _outputs(original, info.input_size))
    loaded = cnnbook.get_model(name, weights=path)  # a Path works too
    torch.testing.assert_close(_outputs(loaded, info.input_size), _outputs(original, info.input_size))


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module."])
def test_training_script_checkpoints(wrap: str, tmp_path: Path) -> None:
    original = cnnbook.get_model("lenet5_modern")
    state = original.state_dict()
    if wrap == "module.":  # saved from nn.DataParallel
        saved: object = {f"module.{k}": v for k, v in state.items()}
    else:
        saved = {wrap: state, "epoch": 3, "best_accuracy": torch.tensor(0.99)}
    torch.save(saved, tmp_path / "ckpt.pt")
    loaded = cnnbook.get_model("lenet5_modern", weights=str(tmp_path / "ckpt.pt"))
    torch.testing.assert_close(_outputs(loaded, (1, 32, 32)), _outputs(original, (1, 32, 32)))


def test_wrong_number_of_classes_is_explained(tmp_path: Path) -> None:
    torch.save(cnnbook.get_model("lenet5").state_dict(), tmp_path / "ten.pth")
    with pytest.raises(CheckpointMismatchError, match=r"num_classes=10") as info:
        cnnbook.get_model("lenet5", num_classes=5, weights=str(tmp_path / "ten.pth"))
    message = str(info.value)
    assert "classifier.4.weight: checkpoint shape (10, 84), model shape (5, 84)" in message
    assert "reset_classifier(5)" in message


def test_wrong_network_lists_keys_and_shapes(tmp_path: Path) -> None:
    torch.save(cnnbook.get_model("lenet5_modern").state_dict(), tmp_path / "modern.pth")
    with pytest.raises(CheckpointMismatchError, match=r"features.0.weight: checkpoint shape \(6, 1, 3, 3\)"):
        cnnbook.get_model("lenet5", weights=str(tmp_path / "modern.pth"))
    state = cnnbook.get_model("lenet5").state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["classifier.0.bias"]
    torch.save(state, tmp_path / "keys.pth")
    with pytest.raises(CheckpointMismatchError) as info:
        cnnbook.get_model("lenet5", weights=str(tmp_path / "keys.pth"))
    assert re.search(r"missing keys .*classifier\.0\.bias", str(info.value))
    assert re.search(r"unexpected keys .*extra\.weight", str(info.value))


def test_missing_file_and_unsafe_pickles(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        cnnbook.get_model("lenet5", weights=str(tmp_path / "nothing.pth"))
    torch.save({"state_dict": cnnbook.get_model("lenet5").state_dict(), "note": Path("x")}, tmp_path / "odd.pth")
    with pytest.raises(Exception, match="(?i)weights_only|unpickl"):  # weights_only=True refuses arbitrary objects
        cnnbook.get_model("lenet5", weights=str(tmp_path / "odd.pth"))
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointMismatchError, match="state dict"):
        cnnbook.get_model("lenet5", weights=str(tmp_path / "list.pth"))


# ---- torchvision weights ---------------------------------------------------------------------------------


def test_no_torchvision_pair_means_local_checkpoints_only() -> None:
    with pytest.raises(ValueError, match="only local checkpoints"):
        cnnbook.get_model("lenet5", weights="DEFAULT")


def _needs(name: str) -> None:
    """A network these tests are about is registered; a missing one fails the test instead of skipping it."""
    assert name in ALL, f"{name} is not in the registry (cnnbook.list_models()); check models/__init__.py"


def test_torchvision_checkpoint_from_the_hub_cache(hub: Path) -> None:
    _needs("resnet18")
    theirs = torchvision.models.resnet18()
    path = _cache("resnet18", theirs.state_dict())
    assert Path(path).parent == hub
    for weights in ("DEFAULT", "IMAGENET1K_V1"):
        ours = cnnbook.get_model("resnet18", weights=weights)
        torch.testing.assert_close(_outputs(ours, (3, 64, 64)), _outputs(theirs, (3, 64, 64)))


def test_unknown_weights_name_lists_the_choices(hub: Path) -> None:
    _needs("resnet18")
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        cnnbook.get_model("resnet18", weights="IMAGENET9K_V7")


def test_offline_error_names_url_and_path(hub: Path) -> None:
    _needs("resnet18")
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    with pytest.raises(WeightsUnavailableError) as info:
        cnnbook.get_model("resnet18", weights="DEFAULT")
    message = str(info.value)
    assert url in message
    assert str(hub / os.path.basename(url)) in message
    assert "local checkpoint" in message
    assert isinstance(info.value, RuntimeError)


def test_failed_download_gives_the_same_error(hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _needs("resnet18")
    monkeypatch.setenv("CNNBOOK_OFFLINE", "0")

    def no_network(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(WeightsUnavailableError, match="download failed.*no route to host"):
        cnnbook.get_model("resnet18", weights="DEFAULT")


def test_densenet_legacy_keys_are_renamed(hub: Path) -> None:
    """torchvision's DenseNet files name layers "norm.1"; its builder renames them, and so do we."""
    _needs("densenet121")
    theirs = torchvision.models.densenet121()
    legacy = {  # as in the real file: old layer names, and no num_batches_tracked (older than that buffer)
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
        for k, v in theirs.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    assert any(".norm.1." in k for k in legacy)
    _cache("densenet121", legacy)
    ours = cnnbook.get_model("densenet121", weights="DEFAULT")
    torch.testing.assert_close(_outputs(ours, (3, 64, 64)), _outputs(theirs, (3, 64, 64)))


def test_googlenet_checkpoint_without_aux_heads(hub: Path) -> None:
    """The file holds the auxiliary heads; a model built without them still loads it, and like torchvision
    switches transform_input on (the weights expect inputs scaled to [-1, 1])."""
    _needs("googlenet")
    theirs = torchvision.models.googlenet(aux_logits=True, init_weights=True)
    _cache("googlenet", theirs.state_dict())
    ours = cnnbook.get_model("googlenet", aux_logits=False, weights="DEFAULT")
    assert ours.transform_input
    theirs.transform_input = True
    torch.testing.assert_close(_outputs(ours, (3, 64, 64)), _outputs(theirs, (3, 64, 64)))


@pytest.mark.parametrize("value,expected", [("1", True), ("on", True), ("TRUE", True), ("yes", True),
                                            ("0", False), ("off", False), ("", False)])
def test_offline_flag_is_read_identically_everywhere(monkeypatch, value: str, expected: bool) -> None:
    """One reader, cnnbook.config.offline: the data loaders and the weights use it (CNNBOOK_OFFLINE=on
    used to be offline for the data but online for the weights), and no other module reads the variable."""
    import pathlib

    import cnnbook.config
    import cnnbook.data.loaders
    import cnnbook.weights

    monkeypatch.setenv("CNNBOOK_OFFLINE", value)
    assert cnnbook.config.offline() is expected
    assert cnnbook.weights.offline is cnnbook.config.offline
    assert cnnbook.data.loaders.offline is cnnbook.config.offline
    package = pathlib.Path(cnnbook.config.__file__).parent
    readers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                     if 'environ.get("CNNBOOK_OFFLINE"' in p.read_text() or "getenv(\"CNNBOOK_OFFLINE\"" in p.read_text())
    assert readers == ["config.py"]
