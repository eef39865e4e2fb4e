"""Every registered part of a model, one place per kind: kind ``X`` lives in ``components/Xs``.

- ``upsampler``: :mod:`~refsr_blocks.components.upsamplers` (``mdsr``, ``bicubic``);
- ``prealign``: :mod:`~refsr_blocks.components.prealigners` (``none``, ``phase_correlation``);
- ``flow``: :mod:`~refsr_blocks.components.flows` (``flownets_plus``, ``flownets``,
  ``flownets_authors``, ``raft_small``);
- ``warper``: :mod:`~refsr_blocks.components.warpers` (``bilinear``, ``nearest``, ``kornia``);
- ``aligner``: :mod:`~refsr_blocks.components.aligners` (``flow_warp``, ``attention``, ``deformable``, ``match_flow``);
- ``encoder``: :mod:`~refsr_blocks.components.encoders` (``crossnet``, ``authors``, ``timm``, ``ttsr_lte``);
- ``decoder``: :mod:`~refsr_blocks.components.decoders` (``unet_fusion``, ``authors_fusion``);
- ``texture_fusion``: :mod:`~refsr_blocks.components.fusions` (``ttsr_csfi``);
- ``loss``: :mod:`~refsr_blocks.components.losses` (``charbonnier``, ``l1``, ``mse``);
- ``model``: :mod:`~refsr_blocks.components.models` (architectures, e.g. ``crossnet`` and ``ttsr``, and
  their presets).

Datasets are components too (kind ``dataset``), registered by :mod:`refsr_blocks.data`.
Importing a module registers its components; ``import refsr_blocks`` imports them all;
``refsr-blocks list`` shows what is registered, plugins included.
"""
