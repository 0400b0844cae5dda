"""The augmentation a model applies to its image while it trains, and the tasks whose labels it would break.

A spec section like the backbone (``augmentation.flip``, ``augmentation.rotation``, ...), searchable like
any spec field, all off by default. The layers themselves are built in augmentation.py; this module
imports no Keras, so the search's driver checks it without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from mtl_models.errors import SpecError
from mtl_models.spec_rules import FLIPS, Flip, check_choice, check_float

__all__ = ["AugmentationSpec", "GEOMETRIC", "check_augmented_tasks"]

# The augmentations that move pixels: a label about where something is, or a mask, would no longer match.
GEOMETRIC = ("flip", "rotation", "zoom", "translation")


@dataclass(frozen=True)
class AugmentationSpec:
    """Random changes to each training image, made inside the model and inactive at inference.

    Each is one Keras preprocessing layer (RandomFlip, RandomRotation, RandomZoom, RandomTranslation,
    RandomContrast), applied to the raw image before it is normalised. 0 (or ``flip="none"``) turns one off.
    """

    flip: Flip = "none"
    rotation: float = 0.0  # up to this fraction of a full turn, either way (0.5: any angle)
    zoom: float = 0.0  # in or out by up to this fraction of the side
    translation: float = 0.0  # shifted by up to this fraction of the side, on each axis
    contrast: float = 0.0  # contrast scaled by a factor in [1 - contrast, 1 + contrast]

    def __post_init__(self) -> None:
        check_choice("augmentation.flip", self.flip, FLIPS)
        for name, high in (("rotation", 0.5), ("zoom", 0.9), ("translation", 0.5), ("contrast", 1.0)):
            object.__setattr__(self, name, check_float(f"augmentation.{name}", getattr(self, name), 0.0, high))

    def active(self) -> tuple[str, ...]:
        """The fields that are on, in the order their layers apply."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) not in ("none", 0.0))


def check_augmented_tasks(augmentation: AugmentationSpec, tasks: tuple, has_image: bool) -> None:
    """Refuse an augmentation without an image to act on, or a geometric one that would make a task's
    label wrong: a segmentation mask, or a task marked ``spatial`` (its label says where something is)."""
    active = augmentation.active()
    if active and not has_image:
        raise SpecError(f"augmentation.{active[0]}", "acts on an image input, and the spec has none",
                        getattr(augmentation, active[0]))
    for name in (f for f in active if f in GEOMETRIC):
        for task in tasks:
            if task.kind == "segmentation":
                why = "its mask would no longer line up with the image"
            elif task.spatial:
                why = "a position target moves with the image, its label does not"
            else:
                continue
            raise SpecError(f"augmentation.{name}", f"would make task {task.name!r} wrong ({why}); use contrast "
                            "only, or drop the task", getattr(augmentation, name))
