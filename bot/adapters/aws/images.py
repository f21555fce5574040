"""SageMaker's XGBoost container: one version trains (training jobs) and serves (the
endpoint's models), its image URI looked up per region with sagemaker-core.

The version is ``PROMOTION_BOT_XGBOOST_IMAGE_VERSION`` (default ``3.0-5``, xgboost 3.0.5),
one of the built-in algorithm's supported versions
(https://docs.aws.amazon.com/sagemaker/latest/dg/xgboost.html#xgboost-supported-versions).
Its serving side loads ``xgboost-model`` from the model's ``model.tar.gz`` with
``Booster.load_model`` unless it unpickles
(https://docs.aws.amazon.com/sagemaker/latest/dg/xgboost-how-to-use.html,
https://github.com/aws/sagemaker-xgboost-container, ``serving``), so the stored model is
written in a format xgboost 3.0 reads (``bot.core.training.package_model``). The image is
the same repository and tag in every region, under each region's own account:
``image_uris.retrieve`` knows which.
"""

from __future__ import annotations

from functools import lru_cache

from bot.errors import BotError, first_line
from bot.settings import Target


def xgboost_image(t: Target) -> str:
    """The XGBoost container image for the target's region: ``PROMOTION_BOT_XGBOOST_IMAGE``
    when set, else sagemaker-core's table of the image per region and version (imported
    only here and only when an image is needed: it takes seconds)."""
    if t.xgboost_image:
        return t.xgboost_image
    return _retrieve(t.region, t.xgboost_image_version)


@lru_cache(maxsize=8)
def _retrieve(region: str, version: str) -> str:
    try:
        from sagemaker.core import image_uris  # lazy: over 1 s to import
    except ImportError as error:  # pragma: no cover - a dependency of the package
        raise BotError("sagemaker-core is not installed: set PROMOTION_BOT_XGBOOST_IMAGE to "
                       "the XGBoost image URI") from error
    try:
        # One image trains and serves: training and inference scope name the same URI.
        return str(image_uris.retrieve("xgboost", region=region, version=version,
                                       image_scope="inference"))
    except ValueError as error:
        raise BotError(f"no SageMaker XGBoost image {version} for region {region}: "
                       f"{first_line(error)}") from error
