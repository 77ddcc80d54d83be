"""Every code block of README.md and of the docs pages runs as written.

The rule (the pages' language tags say which blocks run):

- ```` ```python ```` blocks run, each on its own in a fresh namespace (a reader pastes one block);
- ```` ```bash ```` blocks run in order, in one working folder, as a reader following the pages would;
- ```` ```console ```` blocks are shown, not run: the setup commands (``make demo``, ``make test``),
  whole trainings, cluster launches, servers and viewers that run until stopped (``aether app``,
  ``rerun``) and commands that need the released weights from a hub; ```` ```bibtex ```` (the
  citation) is shown too;
- any other tag fails this test, so no block goes unclassified.

The fixture :func:`readme_dir` is the reader's working folder: empty, as a newcomer's. The README
runs first, then the docs pages in the order of ``mkdocs.yml``'s navigation, all in that one folder
(the site's home page includes the README's quickstart rather than repeating it, and the later
pages read what it wrote). Every input the pages' commands read is made by the pages' own blocks
(``aether examples .`` writes the clip, images, trajectories and RGB-D clip folder;
``aether tiny-model models/tiny`` the model). A bash block whose every command is an ``aether``
command runs those commands in this process through ``aether.cli.main`` (the same code as the
console script, without re-importing torch per line); any other bash block runs in
``bash -euo pipefail``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUN, SHOWN = ("python", "bash"), ("console", "bibtex")
FENCE = re.compile(r"^```(\S*)\n(.*?)^```\s*$", re.S | re.M)


def readme_blocks(text: str) -> list[tuple[str, str, int]]:
    """(language tag, code, line number) of every fenced block of a markdown text."""
    return [(m[1], m[2], text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def bash_commands(code: str) -> list[list[str]] | None:
    """The argv of each command of a bash block when every one is an ``aether`` command, else None."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        if argv[0] != "aether" or any(c in line for c in "|;&$`><"):
            return None
        commands.append(argv[1:])
    return commands


def nav_pages(nav) -> list[str]:
    """The markdown files of an mkdocs ``nav``, in reading order."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return [page for item in nav for page in nav_pages(item)]


def pages() -> list[Path]:
    """README.md, then the docs pages in the order of the site's navigation."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    return [README, *(ROOT / config.get("docs_dir", "docs") / page for page in nav_pages(config["nav"]))]


PAGES = pages()
BLOCKS = [
    (lang, code, f"{page.relative_to(ROOT)}:{line}")
    for page in PAGES
    for lang, code, line in readme_blocks(page.read_text())
]


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory):
    """The reader's working folder: empty (see the module docstring)."""
    return tmp_path_factory.mktemp("readme")


def test_every_page_is_read():
    docs = set((ROOT / "docs").rglob("*.md"))
    assert docs <= set(PAGES), f"docs pages missing from mkdocs.yml's nav: {sorted(docs - set(PAGES))}"
    assert any(lang in RUN for lang, _, _ in BLOCKS), "no runnable code blocks found"


def test_readme_links_resolve():
    """The README's relative links (the docs pages, LICENSE, CITATION) name files of the repository;
    ``mkdocs build --strict`` checks the links between the docs pages."""
    prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", README.read_text()))  # links outside code
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose)
    assert "docs/index.md" in links
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_every_block_is_classified():
    unknown = [(where, lang) for lang, _, where in BLOCKS if lang not in RUN + SHOWN]
    assert not unknown, f"code blocks must be tagged {RUN} (run) or {SHOWN} (shown): {unknown}"


def test_blocks_run_as_written(readme_dir, tmp_path, monkeypatch):
    from aether import cli

    monkeypatch.chdir(readme_dir)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(cli.__file__).parents[1]), *sys.path])}
    assert not any(readme_dir.iterdir()), "the reader starts from an empty folder"
    shim = tmp_path / "bin"  # `aether` on PATH for the non-aether bash blocks, outside the reader's folder
    shim.mkdir()
    (shim / "aether").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aether.cli "$@"\n')
    (shim / "aether").chmod(0o755)
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    timings = []
    failures = []
    for lang, code, where in BLOCKS:
        where = f"{where} ({lang})"
        start = time.perf_counter()
        try:
            _run_block(lang, code, where, env)
        except Exception as err:  # report every failing block, not only the first
            failures.append(f"{where}: {type(err).__name__}: {err}")
        timings.append(f"{where}: {time.perf_counter() - start:.1f} s")
    print("\n".join(timings))
    assert not failures, "\n".join(failures)


def _run_block(lang: str, code: str, where: str, env: dict[str, str]) -> None:
    from aether import cli

    if lang == "python":
        exec(compile(code, where, "exec"), {"__name__": "__readme__"})
    elif lang == "bash":
        commands = bash_commands(code)
        if commands is None:
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", code], env=env, capture_output=True, text=True
            )
            if proc.returncode != 0:
                raise RuntimeError(f"exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
            return
        for argv in commands:
            status = cli.main(argv)
            if status != 0:
                raise RuntimeError(f"`aether {shlex.join(argv)}` exited with {status}")
