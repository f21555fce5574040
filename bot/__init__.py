"""promotion-bot: promote a model through a pull request, apply on merge, roll back by revert."""

__version__ = "0.1.0"
