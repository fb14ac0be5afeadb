"""Every fenced code block of README.md and of every documentation page runs here, found automatically, so
the documentation cannot drift.

Python blocks run as scripts; bash blocks run command by command (``&&`` chains and lines in order, in one
fresh directory per block), with ``.venv/bin/python`` replaced by this interpreter, ``.venv/bin/PROGRAM`` by
the program installed beside it, and paths of the checkout (``examples/...``) made absolute. A command may
end with ``# exits N``: it must then exit with code N. ``.venv/bin/mkdocs build --strict`` builds the site
into the test's directory. Commands that cannot run inside a test are checked instead:
``pip install -e ".[extras]"`` (every extra exists in setup.cfg), the test command (it must be .ci/run's,
which CI runs), ``python3 -m venv .venv`` (the virtualenv these tests run in). Any other command fails the
test until it runs here or is listed in ``NOT_RUN`` with its reason. ``text`` blocks of the documentation
show output and are not run. Blocks that run anything are slow (CI runs them); each block is one test,
named after its file, section and number.

Besides: the quick start prints the figures README says it prints; README's links lead to files; the
settings and command-line references are generated from the code; the docstring examples of the public
API run; and no page speaks of the project's internal process.
"""
import configparser
import doctest
import importlib.util
import inspect
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README] + sorted(DOCS.glob("*.md"))
USER_FILES = [README, ROOT / "BENCHMARKS.md", ROOT / "CHANGELOG.md"] + sorted(
    p for p in DOCS.rglob("*") if p.is_file() and p.suffix in {".md", ".py", ".svg", ".yml"})
VENV_PYTHON = ".venv/bin/python"
VENV_BIN = ".venv/bin/"
TIMEOUT = 1800  # seconds per command: the slowest documented command trains for tens of seconds when idle
# command (exactly as written) -> why it is not run here
NOT_RUN = {"python3 -m venv .venv": "creates the virtualenv the tests already run in"}
INSTALL = re.compile(r'^\.venv/bin/pip install -e "\.\[([a-z0-9_,]+)\]"$')
EXPECTED_EXIT = re.compile(r"^(.*?)\s+# exits (\d+)$")
# Pages README links to that other parts of the project write; they must exist once those parts are in.
WRITTEN_ELSEWHERE: set = set()
# Words of the project's own process, which a user has no use for.
PROCESS_WORDS = re.compile(r"\bissue\s+#?\d+|\bsessions?\b|\bbranch(es)?\b|\bthe lead\b|\bhelpers?\b|/tmp/",
                           re.IGNORECASE)


class Block(NamedTuple):
    ident: str  # file, section slug, number of the block in that section, language
    language: str
    path: Path
    line: int  # of the opening fence
    text: str


def file_blocks(path: Path) -> List[Block]:
    """Every fenced block of one Markdown file with its section."""
    blocks: List[Block] = []
    section = "top"
    count: Dict[str, int] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    stem = "README" if path == README else path.stem
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
            ident = f"{section}-{count[section]}-{language}" if path == README else \
                f"{stem}:{section}-{count[section]}-{language}"
            blocks.append(Block(ident, language, path, i + 1, "\n".join(lines[i + 1:end]) + "\n"))
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


def argv_of(command: str, workdir: Optional[Path] = None) -> List[str]:
    """The command's argv with the virtualenv's programs and the checkout's paths made absolute."""
    bin_dir = Path(sys.executable).parent
    argv = []
    for token in shlex.split(command):
        if token == VENV_PYTHON:
            argv.append(sys.executable)
        elif token.startswith(VENV_BIN):
            argv.append(str(bin_dir / token[len(VENV_BIN):]))
        elif "/" in token and (ROOT / token).exists():
            argv.append(str(ROOT / token))
        else:
            argv.append(token)
    if argv[1:3] == ["build", "--strict"] and Path(argv[0]).name == "mkdocs":
        argv += ["-f", str(ROOT / "mkdocs.yml"), "-d", str((workdir or Path(".")) / "site")]
    return argv


def plan(block: Block) -> List[Tuple[str, object]]:
    """What to do with each command of a bash block: ('run', (command, expected exit code)), ('extras',
    names), ('ci', line), ('skip', reason) or ('unknown', command)."""
    steps: List[Tuple[str, object]] = []
    for line in block.text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line == ci_command():
            steps.append(("ci", line))
            continue
        for command in (c.strip() for c in line.split("&&")):
            expected = EXPECTED_EXIT.match(command)
            code = int(expected.group(2)) if expected else 0
            command = expected.group(1) if expected else command
            install = INSTALL.match(command)
            if command in NOT_RUN:
                steps.append(("skip", NOT_RUN[command]))
            elif install:
                steps.append(("extras", install.group(1).split(",")))
            elif command.startswith(VENV_BIN) and not command.startswith(VENV_BIN + "pip ") \
                    and not any(c in command for c in "#|;><"):
                steps.append(("run", (command, code)))
            else:
                steps.append(("unknown", command))
    return steps


def runs_something(block: Block) -> bool:
    return block.language == "python" or any(kind == "run" for kind, _ in plan(block))


def environment() -> dict:
    env = dict(os.environ, MXNET_SUBGRAPH_VERBOSE="0", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run(argv: List[str], cwd: Path, what: str, expected: int = 0) -> str:
    """Run ``argv`` in ``cwd``; its exit code must be ``expected``. Returns its standard output."""
    print(f"{what}: {' '.join(argv)}")
    proc = subprocess.run(argv, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == expected, f"{what} exited with code {proc.returncode}, expected {expected}:\n" \
                                        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


BLOCKS = [block for page in PAGES for block in file_blocks(page)]
README_BLOCKS = [b for b in BLOCKS if b.path == README]


def test_blocks_are_found():
    """The discovery itself: every fence is a block, the known sections are there, every block can run."""
    for page in PAGES:
        fences = sum(1 for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("```"))
        assert fences == 2 * sum(1 for b in BLOCKS if b.path == page), page
    languages = {b.language for b in README_BLOCKS}
    assert {"bash", "python"} <= languages and languages <= {"bash", "python"}, \
        f"README blocks must be bash or python to be run here, got {sorted(languages)}"
    odd = [b.ident for b in BLOCKS if b.language not in {"bash", "python", "text"}]
    assert not odd, f"documentation blocks must be bash, python or text (output), got {odd}"
    for block in BLOCKS:
        print(f"{block.ident} ({block.path.name} line {block.line}): "
              f"{'runs' if runs_something(block) else 'checked' if block.language != 'text' else 'output'}")
    assert [b.ident for b in README_BLOCKS if b.ident.startswith("quick-start")] == ["quick-start-1-bash"]
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 150, "README.md is for reading in five minutes"


def check_quick_start_output(stdout: str) -> None:
    """What the quick start prints is what README says: the error table of lengths 1..20, max abs error
    0.0009 at every length, mean squared error between 3e-8 and 2e-7 (printed digits)."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "mean squared error 3e-8 to 2e-7 and max absolute error 0.0009 at every length" in text
    rows = re.findall(r"^\s*(\d+)\s+(yes|no)\s+([0-9.e+-]+)\s+([0-9.]+)\s", stdout, re.MULTILINE)
    assert [int(r[0]) for r in rows] == list(range(1, 21)), stdout[-2000:]
    for length, _, mse, max_error in rows:
        assert abs(float(max_error) - 0.0009) <= 0.0001 + 1e-12, f"length {length}: max abs error {max_error}"
        assert 2.5e-8 <= float(mse) <= 2.5e-7, f"length {length}: mse {mse}"
    assert re.search(r"trained 2000 updates \(200000 windows\) in [0-9.]+ s", stdout)


@pytest.mark.parametrize("block", [pytest.param(b, id=b.ident, marks=[pytest.mark.slow] if runs_something(b) else [])
                                   for b in BLOCKS if b.language != "text"])
def test_block(block, tmp_path):
    where = f"{block.ident} ({block.path.name} line {block.line})"
    if block.language == "python":
        script = tmp_path / "block.py"
        script.write_text(block.text, encoding="utf-8")
        run([sys.executable, str(script)], tmp_path, where)
        return
    steps = plan(block)
    unknown = [command for kind, command in steps if kind == "unknown"]
    assert not unknown, f"{where}: no way to run {unknown} here: make it a '.venv/bin/...' command or list it " \
                        "in NOT_RUN with the reason"
    for kind, detail in steps:
        if kind == "extras":
            missing = sorted(set(detail) - declared_extras())  # type: ignore[arg-type]
            assert not missing, f"{where}: pip install names extras {missing} that setup.cfg does not declare"
            print(f"{where}: extras {detail} declared in setup.cfg")
        elif kind == "ci":
            print(f"{where}: the test command is .ci/run's, which CI runs: {detail}")
        elif kind == "skip":
            print(f"{where}: not run: {detail}")
        else:
            command, code = detail  # type: ignore[misc]
            stdout = run(argv_of(command, tmp_path), tmp_path, where, expected=code)
            if block.ident == "quick-start-1-bash" and "examples/bucket_train.py" in command:
                check_quick_start_output(stdout)
                assert (tmp_path / "predictions.png").stat().st_size > 10000


def test_the_readme_test_command_is_ci():
    lines = [line.strip() for b in README_BLOCKS if b.language == "bash" for line in b.text.splitlines()]
    assert ci_command() in lines, f"README shows no line equal to .ci/run's command {ci_command()!r}"
    assert "mkdocs build --strict" in ci_command(), "CI builds the documentation with warnings as errors"


def test_plan_reads_commands_as_documented():
    """The rules above, on made-up blocks (so a change of the rules shows here, not as a silent skip)."""
    block = Block("x", "bash", README, 1, '.venv/bin/sinlstm-train --buckets 0-3  # exits 2\n'
                  'python3 -m venv .venv && .venv/bin/pip install -e ".[cpu,plot]"\nls -l\n'
                  '.venv/bin/python -c "print(1)" | tee out\n')
    assert plan(block) == [("run", (".venv/bin/sinlstm-train --buckets 0-3", 2)),
                           ("skip", NOT_RUN["python3 -m venv .venv"]), ("extras", ["cpu", "plot"]),
                           ("unknown", "ls -l"), ("unknown", '.venv/bin/python -c "print(1)" | tee out')]
    argv = argv_of(".venv/bin/mkdocs build --strict", Path("/x"))
    assert argv[1:] == ["build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(Path("/x") / "site")]
    assert argv_of(".venv/bin/python examples/bucket_train.py")[:2] == [sys.executable,
                                                                         str(ROOT / "examples/bucket_train.py")]


def test_readme_links_lead_to_files():
    """Every relative link of README.md names a file of the checkout (the documentation pages included)."""
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [t for t in targets if "://" not in t]
    assert local, "README links into the documentation"
    missing = [t for t in local if not (ROOT / t).exists() and t not in WRITTEN_ELSEWHERE]
    assert not missing, f"README links to missing files: {missing}"
    assert all(t.startswith("docs/") for t in WRITTEN_ELSEWHERE)


@pytest.mark.parametrize("path", USER_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_facing_files_speak_to_users(path):
    """No word of the project's internal process (issue numbers, sessions, branches, who did what, temporary
    paths) in what users read."""
    hits = [f"{path.name}:{n}: {m.group(0)!r} in {line.strip()[:120]!r}"
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            for m in PROCESS_WORDS.finditer(line)]
    assert not hits, "\n".join(hits)


def test_process_words_are_recognised():
    for text in ["see issue 21", "in this session", "on branch `speed`", "the lead's runs", "a helper thread",
                 "/tmp/trace.py"]:
        assert PROCESS_WORDS.search(text), text
    for text in ["fit_session", "FitSession", "issues of MXNet", "tissue 2"]:
        assert not PROCESS_WORDS.search(text), text


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_reference_is_generated_from_the_declarations():
    from sinlstm_sym.cli.flags import flag_of
    from sinlstm_sym.cli.train import SETTING_FLAGS
    from sinlstm_sym.config import FitConfig
    page = (DOCS / "settings.md").read_text(encoding="utf-8")
    assert "<!-- generated: settings -->" in page
    text = _hooks().expand(page)
    for name, info in FitConfig.declarations().items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"setting {name} missing from the reference"
        assert " ".join(info.help.split()).replace("|", "\\|") in row
        assert (f"`{flag_of(name)}`" in row) == (name in SETTING_FLAGS)
    assert "| `init` | `'library'` | `'gluon'` | `'library'` |" in text  # the presets' table


def test_command_line_reference_is_each_programs_help():
    hooks = _hooks()
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    for program in ("sinlstm-train", "sinlstm-evaluate", "sinlstm-export", "sinlstm-series"):
        assert f"<!-- generated: cli {program} -->" in page
    text = hooks.expand(page)
    from sinlstm_sym.cli import train
    for flag in ["--buckets", "--optimizer-params", "--extend-schedule", "--eval-lengths", "--list", "--column"]:
        assert flag in text, flag
    assert "usage: sinlstm-train" in text and train.__doc__.splitlines()[0] in text
    with pytest.raises(ValueError, match="unknown generated part"):
        hooks.expand("<!-- generated: nothing -->")


def test_api_reference_shows_sphinx_roles_as_code():
    plain = _hooks().plain_roles
    assert plain("see :class:<code>~sinlstm_sym.native.adam.FusedAdam</code>") == "see <code>FusedAdam</code>"
    assert plain(":meth:<code>FitConfig.flat_names</code>") == "<code>FitConfig.flat_names</code>"
    assert plain("<code>fit</code>: a :term") == "<code>fit</code>: a :term"


def test_included_pages_rewrite_links_for_the_site():
    text = _hooks().included("BENCHMARKS.md")
    assert "](img/throughput.svg)" in text and "](docs/" not in text and "](changelog.md)" in text


def test_benchmark_plots_are_drawn_from_benchmarks_tables(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("benchmark_plots", DOCS / "_gen" / "benchmark_plots.py")
    assert spec is not None and spec.loader is not None
    plots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plots)
    monkeypatch.setattr(plots, "OUT", tmp_path)
    assert plots.main() == 0
    drawn = sorted(p.name for p in tmp_path.glob("*.svg"))
    assert drawn == sorted(p.name for p in (DOCS / "img").glob("*.svg")) == \
        ["memory.svg", "throughput.svg", "time-to-accuracy.svg"]
    assert "337k" in (tmp_path / "throughput.svg").read_text()


def _parameter_names(doc: str) -> List[str]:
    """The names of a numpydoc Parameters section (``a, b : type`` gives a and b)."""
    lines = inspect.cleandoc(doc).splitlines()
    start = lines.index("Parameters") + 2
    names = []
    for line in lines[start:]:
        if not line.strip() or line.startswith(" "):
            continue
        if re.match(r"^-+$", line) or line in {"Returns", "Raises", "Examples", "See Also", "Notes"}:
            break
        names += [n.strip().lstrip("*") for n in line.split(" : ")[0].split(",")]
    return names


def test_configuration_docstrings_name_every_field():
    """The numpydoc Parameters of each configuration section name exactly its fields, in order."""
    import dataclasses

    from sinlstm_sym import DataConfig, FitConfig, ModelConfig, OptimizerConfig, RunConfig
    for klass in (FitConfig, ModelConfig, DataConfig, OptimizerConfig, RunConfig):
        assert _parameter_names(klass.__doc__ or "") == [f.name for f in dataclasses.fields(klass)], klass


PUBLIC_DOCSTRINGS = ["fit", "FitResult", "FitConfig", "ModelConfig", "DataConfig", "OptimizerConfig", "RunConfig",
                     "SinBucketIter", "make_sym_gen", "evaluate", "NonFiniteLossError"]


@pytest.mark.parametrize("name", PUBLIC_DOCSTRINGS)
def test_public_docstrings_are_numpydoc(name):
    import sinlstm_sym
    doc = inspect.getdoc(getattr(sinlstm_sym, name)) or ""
    sections = set(re.findall(r"^([A-Z][a-z]+(?: [A-Z][a-z]+)?)\n-{3,}$", doc, re.MULTILINE))
    if name != "NonFiniteLossError":  # an exception class: what it means and what to do
        assert {"Parameters", "Examples"} <= sections, f"{name}: sections {sorted(sections)}"
    assert "Raises" in sections or name in {"FitResult", "NonFiniteLossError"}, f"{name}: no Raises section"


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in PUBLIC_DOCSTRINGS if n != "NonFiniteLossError"])
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    """The Examples of the public docstrings give what they show."""
    import sinlstm_sym
    monkeypatch.chdir(tmp_path)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(getattr(sinlstm_sym, name), name) if t.examples]
    assert tests, f"{name} shows no example"
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
