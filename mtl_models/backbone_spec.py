"""The spec of the shared trunk: conv blocks or a Keras Applications network, and its fine-tuning schedule.

What is checked here besides each field: that the image input suits the backbone (its size, its channels).
"""

from __future__ import annotations

from dataclasses import dataclass

from mtl_models.errors import SpecError
from mtl_models.spec_rules import (APPLICATION_DOWNSAMPLINGS, APPLICATION_MIN_SIDE, APPLICATIONS, BACKBONE_KINDS,
                                   GLOBAL_POOLINGS, MAX_WIDTH, POOLINGS, WEIGHTS_SUFFIXES, Application, BackboneKind,
                                   GlobalPooling, Pooling, as_tuple, check_bool, check_choice, check_int, check_rate,
                                   is_number)
from mtl_models.task_spec import InputSpec, TaskSpec

__all__ = ["BackboneSpec", "check_backbone_input"]

MAX_EPOCHS = 1_000_000  # frozen epochs: beyond any budget; a larger count is a typo, not a schedule
MAX_LAYERS = 100_000  # layers to unfreeze: ResNet50 has 175; any count above an application's means all of it


@dataclass(frozen=True)
class BackboneSpec:
    """The shared trunk: conv blocks (or a Keras Applications network) on the image, embeddings of vectors.

    ``kind="conv"``: each block is Conv-BN-ReLU (two convs and an Add skip when ``residual``), then
    pooling and dropout. ``filters`` is one int for every block or one per block.

    ``kind="keras_application"``: the application ``name`` without its top, then the same global pooling.
    ``weights``: None (or ``"none"``) starts from random weights; ``"imagenet"`` is Keras' download; a path
    loads a weights file of the application (skipping layers that do not match). With weights, the image
    must hold raw pixels (0-255) and the application's own preprocessing takes them, not the z-score.
    Fine-tuning: for ``frozen_epochs`` only the heads train; then the application trains too (its top
    ``unfreeze_layers`` layers; 0 for all) at the learning rate times ``fine_tune_lr_factor``. The conv
    fields (blocks to residual) are unused by an application, and these by the conv kind; both stay valid,
    so a search may choose the kind. ``global_pooling``, ``dense_units``, ``vector_units`` and (after the
    dense layer) ``dropout`` serve both kinds.
    """

    blocks: int = 2
    filters: tuple[int, ...] | int = 32
    kernel_size: int = 3
    batch_norm: bool = True
    dropout: float = 0.0
    pooling: Pooling = "max"
    residual: bool = False
    global_pooling: GlobalPooling = "avg"  # flatten keeps position, avg is smaller
    dense_units: int = 0  # a shared dense layer after pooling; 0 for none
    vector_units: int = 32  # width of each vector input's embedding
    kind: BackboneKind = "conv"
    name: Application = "MobileNetV3Small"  # the smallest, should a search pick keras_application
    weights: str | None = None
    frozen_epochs: int = 0
    unfreeze_layers: int = 0  # None reads as 0
    fine_tune_lr_factor: float = 1.0  # 1: the application trains at the heads' rate

    def __post_init__(self) -> None:
        check_int("backbone.blocks", self.blocks, 0, 8)
        filters = as_tuple(self.filters)
        if isinstance(filters, int) and not isinstance(filters, bool):
            filters = (filters,) * self.blocks
        if not isinstance(filters, tuple) or len(filters) != self.blocks:
            raise SpecError("backbone.filters", f"must be one integer or a list of {self.blocks} (one per block)", self.filters)
        for f in filters:
            check_int("backbone.filters", f, 1, MAX_WIDTH)
        object.__setattr__(self, "filters", filters)
        check_int("backbone.kernel_size", self.kernel_size, 1, 15)
        check_rate("backbone.dropout", self.dropout)
        check_choice("backbone.pooling", self.pooling, POOLINGS)
        check_choice("backbone.global_pooling", self.global_pooling, GLOBAL_POOLINGS)
        for flag in ("batch_norm", "residual"):
            check_bool(f"backbone.{flag}", getattr(self, flag))
        check_int("backbone.dense_units", self.dense_units, 0, MAX_WIDTH)
        check_int("backbone.vector_units", self.vector_units, 1, MAX_WIDTH)
        self._check_application()

    def _check_application(self) -> None:
        check_choice("backbone.kind", self.kind, BACKBONE_KINDS)
        check_choice("backbone.name", self.name, APPLICATIONS)
        weights = self.weights
        if weights not in (None, "none", "imagenet") and not (isinstance(weights, str) and
                                                               weights.endswith(WEIGHTS_SUFFIXES)):
            raise SpecError("backbone.weights", "must be none, imagenet or the path of a weights file "
                            f"(ending {' or '.join(WEIGHTS_SUFFIXES)})", weights)
        check_int("backbone.frozen_epochs", self.frozen_epochs, 0, MAX_EPOCHS)
        if self.unfreeze_layers is None:
            object.__setattr__(self, "unfreeze_layers", 0)
        check_int("backbone.unfreeze_layers", self.unfreeze_layers, 0, MAX_LAYERS)
        factor = self.fine_tune_lr_factor
        if not is_number(factor) or not 0 < factor <= 1:
            raise SpecError("backbone.fine_tune_lr_factor", "must be a float in (0, 1]", factor)
        object.__setattr__(self, "fine_tune_lr_factor", float(factor))

    @property
    def pretrained(self) -> bool:
        """Whether an application starts from given weights (which expect raw pixels, preprocessed its way)."""
        return self.kind == "keras_application" and self.weights not in (None, "none")


def check_backbone_input(backbone: BackboneSpec, images: list[InputSpec], tasks: tuple[TaskSpec, ...]) -> None:
    """Refuse an image input the backbone cannot take: a size its pooling or its application does not
    divide or accept, or channels its pretrained weights do not expect."""
    if not images:
        if backbone.kind == "keras_application":
            raise SpecError("backbone.kind", "keras_application needs an image input, and the spec has none",
                            backbone.kind)
        return
    image = images[0]
    height, width, channels = image.shape
    if backbone.kind == "conv":
        factor = 2**backbone.blocks
        if backbone.blocks and backbone.pooling != "none" and (height % factor or width % factor):
            raise SpecError("backbone.blocks", f"pooling halves the image once per block, so height and width "
                            f"({height}x{width}) must be divisible by 2**blocks={factor}", backbone.blocks)
        return
    if min(height, width) < APPLICATION_MIN_SIDE:
        raise SpecError("backbone.name", f"{backbone.name} takes images of at least {APPLICATION_MIN_SIDE}x"
                        f"{APPLICATION_MIN_SIDE}, and input {image.name!r} is {height}x{width}; use the conv "
                        "backbone or larger images", backbone.name)
    if backbone.pretrained and channels not in (1, 3):
        raise SpecError("backbone.weights", "pretrained weights expect RGB images (3 channels; a gray one is "
                        f"repeated to 3), and input {image.name!r} has {channels} channels; use weights none",
                        backbone.weights)
    stride = 2**APPLICATION_DOWNSAMPLINGS
    if any(t.kind == "segmentation" for t in tasks) and (height % stride or width % stride):
        raise SpecError("backbone.name", f"a segmentation head upsamples {backbone.name}'s feature map "
                        f"{stride} times, so height and width ({height}x{width}) must be divisible by "
                        f"{stride}", backbone.name)
