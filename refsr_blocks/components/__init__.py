"""Every registered part of a model, one place per kind: kind ``X`` lives in ``components/Xs``.

- ``upsampler``: :mod:`~refsr_blocks.components.upsamplers` (``mdsr``, ``bicubic``);
- ``prealign``: :mod:`~refsr_blocks.components.prealigns` (``none``, ``phase_correlation``);
- ``flow``: :mod:`~refsr_blocks.components.flows` (``flownets_plus``, ``flownets``,
  ``flownets_authors``, ``raft_small``);
- ``warper``: :mod:`~refsr_blocks.components.warpers` (``bilinear``, ``nearest``, ``kornia``);
- ``encoder``: :mod:`~refsr_blocks.components.encoders` (``crossnet``, ``authors``, ``timm``, ``ttsr_lte``);
- ``decoder``: :mod:`~refsr_blocks.components.decoders` (``unet_fusion``, ``authors_fusion``);
- ``aligner``: :mod:`~refsr_blocks.components.aligners` (``flow_warp``, ``attention``, ``deformable``, ``match_flow``);
- ``texture_fusion``: :mod:`~refsr_blocks.components.texture_fusions` (``ttsr_csfi``);
- ``correspondence``: :mod:`~refsr_blocks.components.correspondences` (``c2_contrastive``);
- ``restoration``: :mod:`~refsr_blocks.components.restorations` (``c2_dynamic_aggregation``);
- ``loss``: :mod:`~refsr_blocks.components.losses` (``charbonnier``, ``l1``, ``mse``);
- ``model``: :mod:`~refsr_blocks.components.models` (architectures, e.g. ``crossnet`` and ``ttsr``, and
  their presets).

The kinds are registered here, each naming its contract in :mod:`refsr_blocks.testing.contracts`
(imported only when a test asks for it), before any of their components. Datasets are
components too (kind ``dataset``), registered by :mod:`refsr_blocks.data`. Importing a module
registers its components; ``import refsr_blocks`` imports them all; ``refsr-blocks list``
shows what is registered, plugins included.
"""

from ..core.registry import register_kind

# (kind, contract class [or module:class] of refsr_blocks.testing, a part of a model, what it does):
# list_kinds() keeps this order.
_KINDS = (
    ("upsampler", "UpsamplerContract", True, "single-image upsampler: lr B×C×h×w -> B×C×(s·h)×(s·w)"),
    ("prealign", "PrealignContract", True, "global shift of the reference: (upsampled, ref) -> B×2 whole pixels"),
    ("flow", "FlowContract", True, "flow estimator: (a, b) -> flows per level, finest first"),
    ("warper", "WarperContract", True, "backward warp: (x, flow) -> x sampled at p + flow(p)"),
    ("encoder", "EncoderContract", True, "feature pyramid: B×C×H×W -> feature maps per level"),
    ("decoder", "DecoderContract", True, "fusion decoder: (LR features, warped reference features) -> image"),
    ("loss", "LossContract", False, "training loss"),
    ("model", "ModelContract", False, "RefSR architecture"),
    (
        "aligner",
        "AlignerContract",
        True,
        "alignment: (LR features, reference features per reference) -> reference features on the LR grid per level",
    ),
    (
        "texture_fusion",
        "TextureFusionContract",
        True,
        "texture fusion: (lr, aligned textures per level, confidence per level) -> image",
    ),
    (
        "correspondence",
        "correspondence_contracts:CorrespondenceContract",
        True,
        "correspondence: (upsampled LR, K references of any size) -> match of each LR-grid pixel",
    ),
    (
        "restoration",
        "correspondence_contracts:RestorationContract",
        True,
        "restoration: (lr, texture pyramid per reference, correspondence) -> image",
    ),
)
for _kind, _contract, _part, _doc in _KINDS:
    _path = _contract if ":" in _contract else f"contracts:{_contract}"  # module:Class in refsr_blocks.testing
    register_kind(_kind, contract=f"refsr_blocks.testing.{_path}", model_part=_part, doc=_doc)

from . import (  # noqa: E402 - each kind's components, after the kinds
    aligners,
    correspondences,
    decoders,
    encoders,
    flows,
    losses,
    models,
    prealigns,
    restorations,
    texture_fusions,
    upsamplers,
    warpers,
)

__all__ = [
    "aligners",
    "correspondences",
    "decoders",
    "encoders",
    "flows",
    "losses",
    "models",
    "prealigns",
    "restorations",
    "texture_fusions",
    "upsamplers",
    "warpers",
]
