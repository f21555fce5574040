"""``promotion-bot rollback-parameters BACKUP_KEY``: put SSM hyperparameters back from a backup.

The seed's ``rollback_parameter_store``: the emergency lever. The request file in git still
says otherwise, so the next plan shows drift; revert the request to make the rollback stick.
"""

from __future__ import annotations

import argparse

from bot.adapters.aws import lock, ssm
from bot.errors import AwsError, BotError
from bot.settings import target


def run(args: argparse.Namespace) -> int:
    t = target(args.target)
    try:
        with lock.acquire(t, f"{lock.default_owner()} rolling back parameters"):
            restored = ssm.restore(t, args.backup_key)
    except AwsError as error:
        raise BotError(f"AWS failed while restoring {args.backup_key}: {error.explanation}"
                       ) from error
    print(f"{t.name}: restored {t.ssm_prefix}/* from {args.backup_key}")
    for name, value in sorted(restored.values.items()):
        print(f"  {t.ssm_prefix}/{name} = {value}")
    if not restored.changed:
        print("  (they already had these values)")
    print(f"the values replaced are backed up in {restored.backup_key}")
    print(f"note: promotion-requests/{t.name}.yaml and the production config still say "
          "otherwise; revert the request through a pull request to make this permanent")
    return 0
