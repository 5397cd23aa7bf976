"""StarGAN's label spaces: multi-attribute (CelebA: BCE) or single-label (RaFD: softmax CE).

A :class:`LabelSpace` turns a batch's labels into the generator's conditioning vector, computes the
classification loss with the official normalization, and builds the official test targets (one per
attribute: set one hair color and clear the others, or flip a binary attribute; one per RaFD class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


class LabelError(ValueError):
    """A target attribute specification that does not fit the model's label space."""


@dataclass(frozen=True)
class LabelSpace:
    kind: str  # "attributes" (multi-label, BCE) or "classes" (single label, CE)
    names: tuple[str, ...]
    exclusive: tuple[str, ...] = ()  # attributes of which at most one is set (CelebA's hair colors)

    @classmethod
    def from_dataset(cls, dataset: Any) -> "LabelSpace":
        """The label space of a dataset with ``attr_names`` (celeba, shapes attributes) or classes (rafd)."""
        names = tuple(getattr(dataset, "attr_names", ()) or ())
        if names:
            return cls("attributes", names, tuple(getattr(dataset, "exclusive_attrs", ()) or ()))
        if getattr(dataset, "num_classes", 0):
            index = getattr(dataset, "index", None)
            class_names = tuple(index.class_names) if index is not None and index.class_names else tuple(
                f"class_{i}" for i in range(dataset.num_classes))
            return cls("classes", class_names)
        raise LabelError(f"StarGAN needs labelled data: attributes (data.name=celeba, or shapes with "
                         f"data.view=attributes) or classes (data.name=rafd); '{type(dataset).__name__}' has neither")

    @property
    def dim(self) -> int:
        return len(self.names)

    def condition(self, labels: torch.Tensor) -> torch.Tensor:
        """The generator's conditioning vector, float (N, dim)."""
        if self.kind == "attributes":
            return labels.float()
        return F.one_hot(labels.long(), self.dim).float()

    def classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Official definitions: BCE summed over attributes and divided by the batch; softmax CE, batch mean."""
        logits = logits.float()
        if self.kind == "attributes":
            return F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="sum") / logits.shape[0]
        return F.cross_entropy(logits, labels.long())

    def official_targets(self, source: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """One (column name, target conditioning) per attribute or class, as the official test builds them."""
        out = []
        n = source.shape[0]
        for i, name in enumerate(self.names):
            if self.kind == "classes":
                out.append((name, F.one_hot(torch.full((n,), i, dtype=torch.long), self.dim).float()))
                continue
            target = source.float().clone()
            if name in self.exclusive:
                for j, other in enumerate(self.names):
                    if other in self.exclusive:
                        target[:, j] = float(j == i)
            else:
                target[:, i] = 1.0 - target[:, i]
            out.append((name, target))
        return out

    def parse_target(self, spec: str, source: torch.Tensor) -> torch.Tensor:
        """A target from text applied on top of ``source`` conditioning (N, dim).

        Attributes: ``"Blond_Hair"`` sets it (clearing the other exclusive ones), ``"Male=0,Young=1"``
        sets values. Classes: one class name, e.g. ``"happy"``."""
        items = [t.strip() for t in spec.split(",") if t.strip()]
        if not items:
            raise LabelError("an empty --attrs value; name attributes, e.g. --attrs Blond_Hair,Male=0")
        if self.kind == "classes":
            if len(items) != 1 or items[0] not in self.names:
                raise LabelError(f"--attrs '{spec}': name one class of {', '.join(self.names)}")
            return F.one_hot(torch.full((source.shape[0],), self.names.index(items[0])), self.dim).float()
        target = source.float().clone()
        for item in items:
            name, _, value = item.partition("=")
            if name not in self.names:
                raise LabelError(f"--attrs '{spec}': '{name}' is not an attribute of this model; "
                                 f"it knows {', '.join(self.names)}")
            if value not in ("", "0", "1"):
                raise LabelError(f"--attrs '{spec}': value '{value}' of '{name}' must be 0 or 1")
            on = value != "0"
            i = self.names.index(name)
            if on and name in self.exclusive:
                for j, other in enumerate(self.names):
                    if other in self.exclusive:
                        target[:, j] = 0.0
            target[:, i] = float(on)
        return target

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "names": list(self.names), "exclusive": list(self.exclusive)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LabelSpace":
        return cls(d["kind"], tuple(d["names"]), tuple(d.get("exclusive", ())))


@dataclass(frozen=True)
class Part:
    """One labelled dataset of a run and the batch keys that carry its images and labels."""

    space: LabelSpace
    image_key: str = "image"
    label_key: str = "attrs"
    name: str = "main"  # names the phases of joint training (D_celeba, D_rafd)


class Conditioning:
    """Where each dataset's labels sit in G's conditioning vector and in D's class logits.

    One dataset: the vector is its labels. Several (CelebA + RaFD, the paper's joint training): the
    labels of every dataset side by side, zeros for the datasets an image does not come from, then
    the mask vector, a one-hot of the image's dataset. D classifies all labels; each dataset's
    classification loss reads only its own slice.
    """

    def __init__(self, parts: list[Part]):
        self.parts = parts
        self.joint = len(parts) > 1
        self.offsets = [sum(p.space.dim for p in parts[:k]) for k in range(len(parts))]

    @property
    def c_dim(self) -> int:
        return sum(p.space.dim for p in self.parts) + (len(self.parts) if self.joint else 0)

    @property
    def cls_dim(self) -> int:
        return sum(p.space.dim for p in self.parts)

    def condition(self, k: int, labels: torch.Tensor) -> torch.Tensor:
        """G's conditioning for labels of dataset ``k`` (N, c_dim)."""
        own = self.parts[k].space.condition(labels)
        if not self.joint:
            return own
        n = own.shape[0]
        pieces = [own if i == k else own.new_zeros(n, p.space.dim) for i, p in enumerate(self.parts)]
        mask = F.one_hot(torch.full((n,), k, dtype=torch.long, device=own.device), len(self.parts)).to(own.dtype)
        return torch.cat([*pieces, mask], 1)

    def logits(self, k: int, logits: torch.Tensor) -> torch.Tensor:
        """Dataset ``k``'s slice of D's class logits."""
        return logits[:, self.offsets[k]:self.offsets[k] + self.parts[k].space.dim]

    def split(self, cond: torch.Tensor) -> list[torch.Tensor]:
        """Per-dataset pieces of conditioning vectors (mask dropped)."""
        return [cond[:, o:o + p.space.dim] for o, p in zip(self.offsets, self.parts)]

    def official_targets(self, k: int, source: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Official test columns for images of dataset ``k`` with conditioning ``source`` (its own part):
        every dataset's targets, the other datasets' built from zeros (as the official test_multi)."""
        out = []
        for j, part in enumerate(self.parts):
            own = source if j == k else torch.zeros(source.shape[0], part.space.dim)
            for name, target in part.space.official_targets(own):
                out.append((name, self._place(j, target)))
        return out

    def parse_target(self, spec: str, k: int, source: torch.Tensor) -> torch.Tensor:
        """A target from text (see :meth:`LabelSpace.parse_target`); in joint models every name of one
        spec must belong to the same dataset."""
        names = {t.strip().partition("=")[0] for t in spec.split(",") if t.strip()}
        owners = {j for j, p in enumerate(self.parts) if names & set(p.space.names)}
        if self.joint and len(owners) > 1:
            raise LabelError(f"--attrs '{spec}' mixes labels of different datasets; one column targets one dataset")
        j = owners.pop() if owners else 0
        own = source if j == k else torch.zeros(source.shape[0], self.parts[j].space.dim)
        return self._place(j, self.parts[j].space.parse_target(spec, own))

    def _place(self, j: int, target: torch.Tensor) -> torch.Tensor:
        return self.condition(j, target.argmax(1) if self.parts[j].space.kind == "classes" else target)

    @property
    def all_names(self) -> tuple[str, ...]:
        return tuple(n for p in self.parts for n in p.space.names)


def conditioning_for_dataset(dataset: Any) -> Conditioning:
    """The label layout of a training dataset (one part, or CelebA + RaFD for ``celeba_rafd``)."""
    from ganforge.data.joint import JointDataset

    if isinstance(dataset, JointDataset):
        return Conditioning([Part(LabelSpace.from_dataset(dataset.first), "image", "attrs", "celeba"),
                             Part(LabelSpace.from_dataset(dataset.second), "image2", "label2", "rafd")])
    space = LabelSpace.from_dataset(dataset)
    return Conditioning([Part(space, "image", "attrs" if space.kind == "attributes" else "label")])


def conditioning_for_model(model_cfg: Any) -> Conditioning:
    """The label layout a StarGAN model config records (unnamed entries are called attr_i / class_i)."""
    names = tuple(model_cfg.labels)
    if model_cfg.label_kind == "joint":
        split = model_cfg.joint_split
        return Conditioning([
            Part(LabelSpace("attributes", names[:split], tuple(model_cfg.exclusive)), "image", "attrs", "celeba"),
            Part(LabelSpace("classes", names[split:]), "image2", "label2", "rafd")])
    prefix = "attr" if model_cfg.label_kind == "attributes" else "class"
    names = names or tuple(f"{prefix}_{i}" for i in range(model_cfg.c_dim))
    space = LabelSpace(model_cfg.label_kind, names, tuple(model_cfg.exclusive))
    return Conditioning([Part(space, "image", "attrs" if space.kind == "attributes" else "label")])
