"""Every command says what it does, every argument what it means and its default, and every
``--help`` ends with the command's exit codes; ``promotion-bot --help`` imports nothing
heavy."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from bot.cli import _parser, main


def commands() -> dict[str, argparse.ArgumentParser]:
    [sub] = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


COMMANDS = sorted(commands())


def test_every_command_is_listed() -> None:
    assert set(COMMANDS) >= {"validate", "plan", "compare", "apply", "rollback-parameters",
                             "history", "break-lock", "stop-training", "sample-data",
                             "local-aws", "schemas", "demo"}


@pytest.mark.parametrize("name", COMMANDS)
def test_help_says_what_the_command_does_and_its_exit_codes(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    description = commands()[name].description or ""
    assert len(description.split()) >= 8, f"{name}: describe what it does"
    assert " ".join(description.split()[:6]) in " ".join(out.split())
    codes = out.split("exit codes:\n", 1)[1].splitlines()
    assert codes[0].startswith("0 ") and any(c.startswith("2 ") for c in codes)
    assert codes[-1].startswith("130 ")
    assert "%%" not in out and "%(" not in out


@pytest.mark.parametrize("name", COMMANDS)
def test_every_argument_has_help_with_its_default(name: str) -> None:
    for action in commands()[name]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        label = "/".join(action.option_strings) or action.dest
        assert action.help, f"{name} {label}: no help"
        if action.required:
            if action.option_strings:
                assert "(required)" in action.help, f"{name} {label}"
        elif action.default not in (None, False, argparse.SUPPRESS):
            assert f"(default: {action.default})" in action.help, f"{name} {label}"
        else:
            assert "default" in action.help, f"{name} {label}: say what happens without it"


def test_a_wrong_invocation_is_one_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["validate", "--bse", "main"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --bse" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["validate", "--help"], ["plan", "--help"]])
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from bot.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('pydantic', 'yaml', 'boto3', 'botocore', 'numpy', 'pandas', 'xgboost',\n"
        "         'pyarrow', 'PIL', 'github', 'moto')\n"
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=60, check=False)
    assert "HEAVY []" in done.stderr, done.stderr
    assert "usage: promotion-bot" in done.stdout
