"""The documentation holds together: every relative link in README.md, docs/*.md and the top-level pages
reaches a file (and a heading, for `#anchor` links), the README stays short, its two set-up commands are
Makefile targets, and its commands table names every pfharness command. No VM, no network."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from pfharness.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted([*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md")])
README_MAX_LINES = 220

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def prose(text: str) -> str:
    """The text without fenced blocks and code spans, where a `[x](y)` is not a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text (links and marks gone), lower case, punctuation
    dropped (letters, digits, `_`, `-` and spaces stay), each space a `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor on a page; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text()))


def broken_links(page: Path) -> list[str]:
    """The relative links of `page` that reach no file, or no heading of the file they name."""
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked here
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no heading with that anchor in {path or page.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_the_link_check_sees_a_broken_link_and_a_broken_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A `code` heading (with=marks)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Here\n\n[ok](other.md#a-code-heading-withmarks) [ok](#here) ![pic](other.md)\n"
        "[gone](missing.md) [no heading](other.md#nowhere) [no heading](#there) `[code](not-a-link.md)`\n"
        "```\n[fenced](not-a-link-either.md)\n```\n[web](https://example.org/x)\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading with that anchor in other.md",
        "#there: no heading with that anchor in page.md",
    ]


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(README)}
    unlinked = [p.name for p in PAGES if p != README and p.resolve() not in linked]
    assert unlinked == []


def test_the_readme_stays_short():
    assert len(README.read_text().splitlines()) < README_MAX_LINES


def test_the_readme_set_up_commands_are_makefile_targets():
    """The README's first shell block is the two set-up commands; CI (.ci/run) runs `make test`."""
    block = re.search(r"^```sh\n(.*?)^```", README.read_text(), re.M | re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for command in commands:
        assert re.search(rf"^{command.split()[1]}:", makefile, re.M), command
    assert "make test" in (ROOT / ".ci" / "run").read_text().splitlines()


def command_names(group, prefix: str = "") -> list[str]:
    """Every command of a click group, sub-commands as `kernels fetch` (typer's click may be vendored)."""
    names = []
    for name, command in group.commands.items():
        names.append(f"{prefix}{name}")
        if hasattr(command, "commands"):
            names += command_names(command, f"{prefix}{name} ")
    return names


def test_the_readme_commands_table_names_every_command():
    group = typer.main.get_command(app)
    rows = re.findall(r"^\| `pfharness ([a-z][a-z ]*?)(?: [-A-Z`].*?)?` \|", README.read_text(), re.M)
    assert sorted(rows) == sorted(command_names(group))
