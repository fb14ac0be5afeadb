"""Every fenced code block of README.md runs here, found automatically, so the documentation cannot drift.

Python blocks run as scripts; bash blocks run command by command (``&&`` chains and lines in order, in one
fresh directory per block), with ``.venv/bin/python`` replaced by this interpreter and paths of the
checkout (``examples/...``) made absolute. Commands that cannot run inside a test are checked instead:
``pip install -e ".[extras]"`` (every extra exists in setup.cfg), the test command (it must be .ci/run's,
which CI runs), ``python3 -m venv .venv`` (the virtualenv these tests run in). Any other command fails the
test until it runs here or is listed in ``NOT_RUN`` with its reason. Blocks that run anything are slow
(CI runs them); each block is one test, named after its README section and number.
"""
import configparser
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV_PYTHON = ".venv/bin/python"
TIMEOUT = 1800  # seconds per command: the slowest README command trains for tens of seconds when the box is idle
# command (exactly as written in README) -> why it is not run here
NOT_RUN = {"python3 -m venv .venv": "creates the virtualenv the tests already run in"}
INSTALL = re.compile(r'^\.venv/bin/pip install -e "\.\[([a-z0-9_,]+)\]"$')


class Block(NamedTuple):
    ident: str  # section slug, number of the block in that section, language
    language: str
    line: int  # of the opening fence in README.md
    text: str


def readme_blocks() -> List[Block]:
    """Every fenced block of README.md with its section."""
    blocks, section, count = [], "top", {}
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        heading = re.match(r"^#{1,6}\s+(.*)$", lines[i])
        fence = re.match(r"^```\s*([A-Za-z0-9_+-]*)\s*$", lines[i])
        if heading:
            section = re.sub(r"[^a-z0-9]+", "-", heading.group(1).lower()).strip("-")
        elif fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            count[section] = count.get(section, 0) + 1
            language = fence.group(1) or "text"
            blocks.append(Block(f"{section}-{count[section]}-{language}", language, i + 1,
                                "\n".join(lines[i + 1:end]) + "\n"))
            i = end
        i += 1
    return blocks


def ci_command() -> str:
    """The command .ci/run runs (its last line)."""
    return (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1].strip()


def declared_extras() -> set:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return set(parser["options.extras_require"])


def plan(block: Block) -> List[Tuple[str, object]]:
    """What to do with each command of a bash block: ('run', argv), ('extras', names), ('ci', line),
    ('skip', reason) or ('unknown', command)."""
    steps: List[Tuple[str, object]] = []
    for line in block.text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line == ci_command():
            steps.append(("ci", line))
            continue
        for command in (c.strip() for c in line.split("&&")):
            install = INSTALL.match(command)
            if command in NOT_RUN:
                steps.append(("skip", NOT_RUN[command]))
            elif install:
                steps.append(("extras", install.group(1).split(",")))
            elif command.startswith(VENV_PYTHON + " "):
                argv = [sys.executable if token == VENV_PYTHON else
                        str(ROOT / token) if "/" in token and (ROOT / token).exists() else token
                        for token in shlex.split(command)]
                steps.append(("run", argv))
            else:
                steps.append(("unknown", command))
    return steps


def runs_something(block: Block) -> bool:
    return block.language == "python" or any(kind == "run" for kind, _ in plan(block))


def environment() -> dict:
    env = dict(os.environ, MXNET_SUBGRAPH_VERBOSE="0", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run(argv: List[str], cwd: Path, what: str) -> None:
    print(f"{what}: {' '.join(argv)}")
    proc = subprocess.run(argv, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"{what} failed with exit code {proc.returncode}:\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-3000:]}"


BLOCKS = readme_blocks()


def test_readme_blocks_are_found():
    """The discovery itself: every fence is a block, the known sections are there."""
    fences = sum(1 for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("```"))
    assert fences == 2 * len(BLOCKS)
    languages = {b.language for b in BLOCKS}
    assert {"bash", "python"} <= languages and languages <= {"bash", "python"}, \
        f"README blocks must be bash or python to be run here, got {sorted(languages)}"
    for block in BLOCKS:
        print(f"{block.ident} (README.md line {block.line}): {'runs' if runs_something(block) else 'checked'}")
    assert [b.ident for b in BLOCKS if b.ident.startswith("quick-start")] == ["quick-start-1-bash"]


@pytest.mark.parametrize("block", [pytest.param(b, id=b.ident, marks=[pytest.mark.slow] if runs_something(b) else [])
                                   for b in BLOCKS])
def test_readme_block(block, tmp_path):
    if block.language == "python":
        script = tmp_path / "block.py"
        script.write_text(block.text, encoding="utf-8")
        run([sys.executable, str(script)], tmp_path, f"{block.ident} (README.md line {block.line})")
        return
    steps = plan(block)
    unknown = [command for kind, command in steps if kind == "unknown"]
    assert not unknown, f"{block.ident} (README.md line {block.line}): no way to run {unknown} here: make it a " \
                        "'.venv/bin/python ...' command or list it in NOT_RUN with the reason"
    for kind, detail in steps:
        if kind == "extras":
            missing = sorted(set(detail) - declared_extras())
            assert not missing, f"{block.ident}: pip install names extras {missing} that setup.cfg does not declare"
            print(f"{block.ident}: extras {detail} declared in setup.cfg")
        elif kind == "ci":
            print(f"{block.ident}: the test command is .ci/run's, which CI runs: {detail}")
        elif kind == "skip":
            print(f"{block.ident}: not run: {detail}")
        else:
            run(detail, tmp_path, f"{block.ident} (README.md line {block.line})")


def test_the_readme_test_command_is_ci():
    lines = [line.strip() for b in BLOCKS if b.language == "bash" for line in b.text.splitlines()]
    assert ci_command() in lines, f"README shows no line equal to .ci/run's command {ci_command()!r}"
