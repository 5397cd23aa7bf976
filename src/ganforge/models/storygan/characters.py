"""Character classification of generated Pororo-SV frames (the follow-up papers' character accuracy).

The classifier is the user's file (nothing is downloaded): a TorchScript module, or a state dict of
torchvision's Inception-v3 with a 9-way ``fc`` (``module.`` prefixes removed), as the Pororo-SV
character classifiers of later story-visualization work are published. Frames are resized to
``size`` (299) and normalized with the ImageNet mean and std; a character is present when its
sigmoid exceeds 0.5. Reported: ``char_acc`` (all characters of a frame right) and ``char_f1``
(micro F1 over characters).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.run.checkpoint import CheckpointError, read_weights_only

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_character_classifier(path: str | Path, num_labels: int) -> nn.Module:
    """A TorchScript file or an Inception-v3 state dict with ``num_labels`` outputs, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"character classifier '{path}' does not exist")
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError:
        pass  # not TorchScript: a state dict
    state = read_weights_only(path, "character classifier (TorchScript or a state dict)")
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if "fc.weight" not in state or state["fc.weight"].shape[0] != num_labels:
        got = tuple(state["fc.weight"].shape) if "fc.weight" in state else "no fc.weight"
        raise CheckpointError(f"'{path}' is not an Inception-v3 state dict with {num_labels} character outputs "
                              f"(fc.weight: {got})")
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits="AuxLogits.fc.weight" in state, init_weights=False,
                       num_classes=num_labels)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"'{path}' does not fit torchvision's Inception-v3: {str(err).splitlines()[0]}") from None
    return net.eval()


@torch.no_grad()
def character_scores(classifier: nn.Module, frames: torch.Tensor, labels: torch.Tensor, size: int = 299,
                     batch_size: int = 50) -> dict[str, float]:
    """``char_acc`` and ``char_f1`` of frames (M, 3, H, W) in [-1, 1] against labels (M, L) 0/1."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    predictions = []
    for chunk in frames.split(batch_size):
        x = F.interpolate((chunk.float() + 1) / 2, size=(size, size), mode="bilinear", align_corners=False)
        out = classifier((x - mean) / std)
        out = out.logits if hasattr(out, "logits") else out
        predictions.append(out.float().sigmoid() > 0.5)
    pred, truth = torch.cat(predictions), labels.bool()
    tp = (pred & truth).sum().item()
    fp, fn = (pred & ~truth).sum().item(), (~pred & truth).sum().item()
    return {"char_acc": (pred == truth).all(1).float().mean().item(),
            "char_f1": 2 * tp / max(2 * tp + fp + fn, 1)}
