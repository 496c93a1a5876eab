"""The documentation is kept honest: its links resolve, its runnable commands run, and
the CLI reference names every command and option the `harness` CLI really has.

* Links: every relative link and `#anchor` in README.md and docs/*.md points at a file
  that exists inside the repository and, for Markdown, at a heading that exists (GitHub's
  heading slugs). External http(s) links are never fetched.
* Runnable commands: fenced blocks of README.md and docs/*.md whose info string is
  ```` ```bash runnable ```` (the convention is explained at the top of
  docs/performance-testing.md) are run, file by
  file in document order, in one empty working directory per file (so the defaults
  `--state-dir .harness`, `--out reports`, `--store baselines` all land in it), with
  bash -e: every command must exit 0. They must stay cheap: `tiny`, a few seconds
  (checked before anything runs).
* docs/cli.md has a section `harness COMMAND` for every command, listing every option.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINKED = [ROOT / "README.md", *DOCS]
CLI_MD = ROOT / "docs" / "cli.md"
RUNNABLE = "runnable"

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:[^>]*\s)?(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


# ---------------------------------------------------------------- Markdown, minimally


@dataclass(frozen=True)
class Block:
    """A fenced code block: its info string's words, its text, the line it starts on."""

    info: tuple[str, ...]
    body: str
    line: int


def split(text: str) -> tuple[list[tuple[int, str]], list[Block]]:
    """The prose lines (number, text) outside fenced blocks, and the fenced blocks."""
    prose: list[tuple[int, str]] = []
    blocks: list[Block] = []
    fence: str | None = None
    info: tuple[str, ...] = ()
    body: list[str] = []
    start = 0
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence is None:
            if m and not (m[1][0] == "`" and "`" in m[2]):
                fence, info, body, start = m[1], tuple(m[2].split()), [], n
            else:
                prose.append((n, line))
        elif m and m[1][0] == fence[0] and len(m[1]) >= len(fence) and not m[2].strip():
            blocks.append(Block(info, "\n".join(body) + "\n", start))
            fence = None
        else:
            body.append(line)
    if fence is not None:  # an unclosed fence runs to the end, as GitHub renders it
        blocks.append(Block(info, "\n".join(body) + "\n", start))
    return prose, blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case, punctuation dropped (letters,
    digits, `_` and `-` kept), spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown file has: heading slugs (repeats get -1, -2, ... as on
    GitHub) and explicit `<a id=...>` / `<a name=...>`."""
    prose, _ = split(text)
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose:
        m = HEADING.match(line)
        if m:
            base = slug(m[2])
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        found.update(a.lower() for a in HTML_ANCHOR.findall(line))
    return found


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every link outside code: inline links and images, and
    reference definitions."""
    prose, _ = split(text)
    out = []
    for n, line in prose:
        bare = CODE_SPAN.sub("", line)
        out += [(n, target) for target in INLINE_LINK.findall(bare)]
        m = REFERENCE_DEF.match(bare)
        if m:
            out.append((n, m[1]))
    return out


def link_problems(path: Path, root: Path = ROOT) -> list[str]:
    """What is broken in one Markdown file's links: a missing file, a file outside the
    repository, a missing anchor. External links (any URL scheme) are not checked."""
    problems = []
    cache: dict[Path, set[str]] = {}
    for n, target in links(path.read_text(encoding="utf-8")):
        where = f"{path.relative_to(root)}:{n}: {target}"
        if not target:
            problems.append(f"{where}: empty link")
            continue
        if SCHEME.match(target):  # http(s), mailto: never fetched
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.is_relative_to(root.resolve()):
            problems.append(f"{where}: points outside the repository")
            continue
        if not dest.exists():
            problems.append(f"{where}: no such file {dest.relative_to(root.resolve())}")
            continue
        if anchor and dest.suffix == ".md":
            if dest not in cache:
                cache[dest] = anchors(dest.read_text(encoding="utf-8"))
            if anchor.lower() not in cache[dest]:
                problems.append(f"{where}: no heading with anchor #{anchor} in "
                                f"{dest.relative_to(root.resolve())}")
    return problems


def runnable_blocks(path: Path) -> list[Block]:
    return [b for b in split(path.read_text(encoding="utf-8"))[1] if RUNNABLE in b.info[1:]]


# ---------------------------------------------------------------- (a) links


@pytest.mark.parametrize("doc", LINKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(doc: Path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the link check must not use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert link_problems(doc) == []


def test_the_docs_this_issue_asks_for_exist():
    for name in ("troubleshooting.md", "performance-testing.md", "cli.md", "runbook.md"):
        assert (ROOT / "docs" / name).is_file(), name


def test_slugs_are_githubs():
    assert slug("`harness run`") == "harness-run"
    assert slug("Scenarios and shapes (`scenarios/`)") == "scenarios-and-shapes-scenarios"
    assert slug("Chaos (`harness run --chaos SPEC`)") == "chaos-harness-run---chaos-spec"
    assert slug("Alert thresholds for monitoring (issue 10)") == \
        "alert-thresholds-for-monitoring-issue-10"
    assert slug("The `upstream_faults` scenario") == "the-upstream_faults-scenario"
    assert slug("KpiViewStale") == "kpiviewstale"
    assert slug("A [linked](x.md) heading") == "a-linked-heading"
    text = "# Notes\n\n## Notes\n\n```bash\n# not a heading\n```\n<a id=\"Here\"></a>\n"
    assert anchors(text) == {"notes", "notes-1", "here"}


def test_the_checker_catches_broken_links(tmp_path: Path):
    """A document with each kind of breakage, and links that are fine."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## A section\n")
    doc = tmp_path / "docs" / "guide.md"
    lines = [
        "# Guide",
        "## Start here",
        "[fine](other.md) [fine](other.md#a-section) [fine](#start-here) [web](https://x.invalid/a)",
        "[missing file](nope.md)",
        "[missing anchor](other.md#no-such-section)",
        "[missing local anchor](#nowhere)",
        "[outside](../../etc/passwd)",
        "`[in code](ignored.md)` and ![image](missing.png)",
        "[ref]: gone.md",
        "```markdown",
        "[in a fence](ignored-too.md)",
        "```",
    ]
    doc.write_text("\n".join(lines) + "\n")
    problems = link_problems(doc, tmp_path)
    assert [p.split(": ", 2)[1] for p in problems] == [
        "nope.md", "other.md#no-such-section", "#nowhere", "../../etc/passwd", "missing.png",
        "gone.md"], problems
    assert "no heading with anchor #no-such-section in docs/other.md" in problems[1]
    assert "points outside the repository" in problems[3]


# ---------------------------------------------------------------- (c) the CLI reference


def cli_commands() -> dict[str, list[list[str]]]:
    """Every leaf command of `harness` ("baseline save") -> its options' names (each a
    list: one option may have several, `-o` / `--output`)."""
    import typer

    from harness.cli import app

    out: dict[str, list[list[str]]] = {}

    def walk(cmd, prefix: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs is not None:
            for name, sub in subs.items():
                walk(sub, (*prefix, name))
            return
        out[" ".join(prefix)] = [
            [o for o in (*p.opts, *p.secondary_opts) if o.startswith("-")]
            for p in cmd.params if any(o.startswith("-") for o in p.opts)
            and "--help" not in p.opts]

    walk(typer.main.get_command(app), ())
    return out


def sections(text: str) -> dict[str, str]:
    """Heading text (backticks removed) -> the section under it, up to the next heading
    of the same or a higher level."""
    prose, _ = split(text)
    lines = text.splitlines()
    heads = [(n, len(m[1]), m[2].replace("`", "").strip())
             for n, line in prose if (m := HEADING.match(line))]
    out = {}
    for i, (n, level, title) in enumerate(heads):
        end = next((m for m, lv, _ in heads[i + 1:] if lv <= level), len(lines) + 1)
        out[title] = "\n".join(lines[n:end - 1])
    return out


OPTION_ROW = re.compile(r"^\|\s*`([^`]+)`")


def cli_problems(text: str, commands: dict[str, list[list[str]]]) -> list[str]:
    """What docs/cli.md lacks: a command without a section, an option its section does
    not mention, a section without exit codes, an option row naming no real option."""
    problems = []
    found = sections(text)
    for command, options in commands.items():
        section = found.get(f"harness {command}")
        if section is None:
            problems.append(f"harness {command}: no section")
            continue
        mentioned = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", section))
        for names in options:
            if not mentioned & set(names):
                problems.append(f"harness {command}: option {names[-1]} not documented")
        if "Exit codes" not in section:
            problems.append(f"harness {command}: no 'Exit codes'")
        real = {o for names in options for o in names}
        for line in section.splitlines():
            m = OPTION_ROW.match(line)
            if m and m[1].startswith("-"):
                for flag in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", m[1]):
                    if flag not in real:
                        problems.append(f"harness {command}: documents {flag}, which it "
                                        f"does not have")
    return problems


def test_every_command_and_option_is_in_the_cli_reference():
    commands = cli_commands()
    assert {"run", "compare", "baseline save", "alerts export", "store push"} <= set(commands)
    assert cli_problems(CLI_MD.read_text(encoding="utf-8"), commands) == []


def test_the_cli_check_catches_what_is_missing():
    commands = {"run": [["--scenario"], ["--users"]], "baseline save": [["--force",
                                                                          "--no-force"]],
                "alerts export": [["-o", "--output"]]}
    lines = [
        "# CLI", "## `harness run`", "Runs.", "| `--scenario NAME` | x |", "| `--userz N` | x |",
        "Exit codes: 0.", "## `harness alerts export`", "`-o FILE` writes.", "Exit codes: 0.",
    ]
    text = "\n".join(lines)
    assert cli_problems(text, commands) == [
        "harness run: option --users not documented",
        "harness run: documents --userz, which it does not have",
        "harness baseline save: no section",
    ]


def test_the_cli_reference_is_checked_against_the_real_help():
    """Spot check against the text `--help` prints: the commands the reference lists are
    the ones the top-level help lists."""
    harness = Path(sys.executable).parent / "harness"
    argv = [str(harness)] if harness.exists() else [sys.executable, "-m", "harness.cli"]
    out = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLUMNS": "200"}, check=True).stdout
    # rich's panel ("│ run   Run a ...") or click's plain list ("  run   Run a ...")
    listed = set(re.findall(r"^(?:│ |  )(\w[\w-]*)\s{2,}\S", out, re.MULTILINE))
    assert listed == {c.split()[0] for c in cli_commands()}, listed


# ---------------------------------------------------------------- (b) runnable commands

CHEAP_RUN = {"--dataset": {"tiny"}}
EXPENSIVE = ("harness ab", "harness calibrate", "harness bench", "harness capacity",
             "harness stack up", "harness db seed", "harness worker")
MAX_DURATION_S = 5.0


def cost_problems(block: Block) -> list[str]:
    """A runnable block must stay cheap: every `harness run` on `tiny` for at most
    5 s measured (and a 1-round, 1-profile run); no command that runs for minutes."""
    from harness.run.config import parse_duration

    problems = []
    for line in block.body.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line, comments=True)
        if "--help" in words:
            continue
        for slow in EXPENSIVE:
            if words[:len(slow.split())] == slow.split():
                problems.append(f"line {block.line}: {slow} is too slow for a runnable block")
        if words[:2] == ["harness", "run"]:
            given = dict(itertools.pairwise(words))
            if given.get("--dataset") != "tiny":
                problems.append(f"{line}: runnable runs use --dataset tiny")
            if parse_duration(given.get("--duration", "60s")) > MAX_DURATION_S or \
                    parse_duration(given.get("--warmup", "10s")) > MAX_DURATION_S:
                problems.append(f"{line}: runnable runs measure and warm up <= 5s")
            if given.get("--rounds", "1") != "1" or "," in given.get("--profile", ""):
                problems.append(f"{line}: one round of one profile")
    return problems


def test_runnable_blocks_exist_and_are_cheap():
    blocks = {doc: runnable_blocks(doc) for doc in LINKED}
    assert sum(len(b) for b in blocks.values()) >= 2, "no runnable blocks in docs/"
    assert runnable_blocks(ROOT / "docs" / "performance-testing.md"), \
        "performance-testing.md explains the convention and holds the tour"
    problems = [f"{doc.name}: {p}" for doc, bs in blocks.items() for b in bs
                for p in cost_problems(b)]
    assert problems == []


def test_the_cost_check_catches_an_expensive_block():
    block = Block(("bash", RUNNABLE), "harness run --scenario mixed\n"
                  "harness run --dataset tiny --duration 60s --warmup 1s\n"
                  "harness ab --a profile:optimized --b profile:naive\n", 7)
    assert len(cost_problems(block)) == 4  # mixed: not tiny, and 60 s by default
    fine = Block(("bash", RUNNABLE), "harness run --dataset tiny --duration 3s --warmup 1s\n"
                 "harness runs\nharness run --help\nharness ab --help\n", 9)
    assert cost_problems(fine) == []
    text = "```bash runnable\nharness runs\n```\n```bash\nharness ab\n```\n"
    assert [b.info for b in split(text)[1]] == [("bash", RUNNABLE), ("bash",)]


def _environment(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HARNESS_DATABASE_URL", "HARNESS_STORE", "COLUMNS")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = env.get("HOME", str(work))
    if os.environ.get("HARNESS_TEST_DATABASE_URL"):  # the suite's external server
        env["HARNESS_DATABASE_URL"] = os.environ["HARNESS_TEST_DATABASE_URL"]
    return env


@pytest.mark.e2e
@pytest.mark.parametrize("doc", [d for d in LINKED if runnable_blocks(d)],
                         ids=lambda p: p.name)
def test_runnable_commands_exit_0(doc: Path):
    # not pytest's tmp_path: its base is private (0700), and the embedded PostgreSQL runs
    # as another OS user when the tests run as root (tests/e2e/conftest.py)
    work = Path(tempfile.mkdtemp(prefix="harness-docs-"))
    env = _environment(work)
    timings = []
    try:
        for block in runnable_blocks(doc):
            started = time.monotonic()
            proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.body],
                                  cwd=work, env=env, capture_output=True, text=True,
                                  timeout=300, check=False)
            timings.append(f"{doc.name}:{block.line} {time.monotonic() - started:.1f}s")
            assert proc.returncode == 0, (
                f"{doc.name}:{block.line} exited {proc.returncode}\n{block.body}\n"
                f"--- stdout (end)\n{proc.stdout[-3000:]}\n--- stderr (end)\n"
                f"{proc.stderr[-3000:]}")
            if "harness alerts export" in block.body:
                _exported_runbook_links_resolve(work)
    finally:
        print("runnable blocks:", "; ".join(timings))
        shutil.rmtree(work, ignore_errors=True)


def _exported_runbook_links_resolve(work: Path) -> None:
    """The alerts a real baseline exports link into docs/runbook.md sections that exist."""
    import yaml

    rules = [r for f in work.glob("*.yml") if not f.name.endswith(("_test.yml", ".sloth.yml"))
             for g in (yaml.safe_load(f.read_text()) or {}).get("groups", [])
             for r in g.get("rules", []) if "alert" in r]
    assert rules, "the runnable alerts export wrote no alerts"
    known = anchors((ROOT / "docs" / "runbook.md").read_text(encoding="utf-8"))
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == "docs/runbook.md" and anchor in known, (rule["alert"], url)
