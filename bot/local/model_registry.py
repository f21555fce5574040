"""What moto 5.2's Model Registry lacks, added to its SageMaker response class.

- ``CreateModelPackage`` ignores ``ClientToken``: SageMaker answers a repeated call with the
  same token with the package it created, not a second one
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html);
- ``UpdateModelPackage`` drops the package's ``CustomerMetadataProperties`` (and its
  ``ApprovalDescription``) when a call does not name them; SageMaker changes only what the
  call names (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult

_lock = threading.Lock()


class ModelRegistryActions:
    """Actions for moto's ``SageMakerResponse`` that fill the gaps above (a mixin: moto's
    class comes after it in the bases of ``moto_gaps``' response class)."""

    # Provided by moto's response class, which comes after this one.
    sagemaker_backend: Any
    _get_param: Callable[..., Any]

    def create_model_package(self) -> Any:
        token = self._get_param("ClientToken")
        with _lock:
            if token:
                for package in self.sagemaker_backend.model_packages.values():
                    if getattr(package, "client_token", None) == token:
                        return ActionResult({"ModelPackageArn": package.arn})
            return super().create_model_package()  # type: ignore[misc]

    def update_model_package(self) -> Any:
        arn = self._get_param("ModelPackageArn")
        backend = self.sagemaker_backend
        package = backend.model_packages.get(backend.model_package_name_mapping.get(arn, arn))
        kept = (None if package is None else
                (dict(package.customer_metadata_properties or {}),
                 package.approval_description))
        with _lock:
            result = super().update_model_package()  # type: ignore[misc]
            if package is not None and kept is not None:
                properties, description = kept
                if self._get_param("CustomerMetadataProperties") is None:
                    removed = self._get_param("CustomerMetadataPropertiesToRemove") or []
                    package.customer_metadata_properties = {
                        k: v for k, v in properties.items() if k not in removed} or None
                if self._get_param("ApprovalDescription") is None:
                    package.approval_description = description
        return result

