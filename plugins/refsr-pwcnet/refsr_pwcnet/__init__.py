"""refsr-pwcnet: a light PWC-Net flow estimator for refsr-blocks, as a plugin.

Once installed, ``build_model("crossnet", ...)`` specs can use ``"pwcnet"`` as their
``flow`` component; the class is also usable directly.
"""

from __future__ import annotations

from .model import PWCNet, local_correlation

__all__ = ["PWCNet", "local_correlation"]
__version__ = "0.1.0"
