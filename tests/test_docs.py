"""The README is a newcomer's page and every link in it and in docs/ leads somewhere.

README.md stays short (the manual lives in docs/), names the two commands a newcomer needs, and
links to every docs page; a relative link, and its #anchor where it has one, must match a file
and a heading that exist. External links (http:, https:, mailto:) are not followed.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = ("cli.md", "file-formats.md", "window.md", "mistakes.md", "benchmarks.md",
         "design.md", "robustness.md")
README_MAX_LINES = 200

# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def prose(text: str) -> str:
    """`text` without its fenced code blocks, where brackets are code, not links."""
    return FENCE.sub("", text)


def links(text: str) -> list[str]:
    """The link targets of a Markdown text, outside code blocks and inline code."""
    outside_code = re.sub(r"`[^`\n]*`", "", prose(text))
    return LINK.findall(outside_code)


def anchor(heading: str) -> str:
    """The #fragment GitHub gives a heading: lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every #fragment a link may use to reach a heading of `page`."""
    return {anchor(h) for h in HEADING.findall(prose(page.read_text(encoding="utf-8")))}


def broken_links(page: Path) -> list[str]:
    """Each relative link of `page` whose file or heading does not exist, as
    "docs/cli.md: missing.md (no such file)"."""
    broken = []
    name = page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name
    for target in links(page.read_text(encoding="utf-8")):
        if target.startswith(EXTERNAL):
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.is_file():
            broken.append(f"{name}: {target} (no such file)")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{name}: {target} (no heading #{fragment} in {linked.name})")
    return broken


def markdown_pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_short():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines < README_MAX_LINES, (
        f"README.md has {lines} lines; keep it under {README_MAX_LINES} and move the rest "
        "into docs/")


def test_readme_names_make_run_and_make_test():
    text = README.read_text(encoding="utf-8")
    for command in ("make run", "make test"):
        assert command in text, f"README.md does not say `{command}`"


@pytest.mark.parametrize("page", PAGES)
def test_docs_page_exists_and_readme_links_to_it(page):
    assert (DOCS / page).is_file(), f"docs/{page} is missing"
    assert f"docs/{page}" in links(README.read_text(encoding="utf-8")), (
        f"README.md does not link to docs/{page}")


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: p.name)
def test_every_relative_link_leads_somewhere(page):
    broken = broken_links(page)
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_a_broken_link_is_reported_by_name(tmp_path):
    (tmp_path / "there.md").write_text("# A heading\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[fine](there.md) [fine too](there.md#a-heading) [web](https://example.org/x)\n"
        "[gone](missing.md) ![picture](images/none.png) [bad anchor](there.md#elsewhere)\n"
        "```\n[in code](not-a-link.md)\n```\n`[inline](also-not.md)`\n",
        encoding="utf-8")
    assert broken_links(page) == [
        "page.md: missing.md (no such file)",
        "page.md: images/none.png (no such file)",
        "page.md: there.md#elsewhere (no heading #elsewhere in there.md)",
    ]


@pytest.mark.parametrize(("heading", "expected"), [
    ("An export is whole or not at all (engine/export.py)",
     "an-export-is-whole-or-not-at-all-engineexportpy"),
    ("Never execute a file's contents", "never-execute-a-files-contents"),
    ("Options and the memory of a run (cli/, engine/budget.py)",
     "options-and-the-memory-of-a-run-cli-enginebudgetpy"),
    ("Our format (.dat)", "our-format-dat"),
])
def test_anchors_are_githubs(heading, expected):
    assert anchor(heading) == expected
