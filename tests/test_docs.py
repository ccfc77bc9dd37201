"""The documentation site (``make docs``): built with no warning, every internal link and
anchor resolves, every public name is in the API reference, every notebook is a page with
its figures, and every paper element has its page.

The links are checked offline, over the built HTML (Sphinx's ``linkcheck`` needs the
network); links to other sites are not followed.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from docs_site import DOCS, REPO, WARNINGS, ensure_built, pages, parse

import binedu

COURSE_MODULES = (
    "binedu.course.widgets",
    "binedu.course.live_training",
    "binedu.course.standins",
    "binedu.course.plots",
    "binedu.course.plots_eval",
    "binedu.course.attention_maps",
    "binedu.course.exercises",
)
PAPER_PAGES = ("eq1", "alg1", "alg2", "alg3", "alg4", "alg5", "alg6", "alg7", "alg8")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)  # http:, https:, mailto:, data:, ...
WIDGET_NOTEBOOKS = {  # notebook -> the stand-ins its page must show (titles from binedu.course.standins)
    "01_why_one_bit": ["Memory of a model at each precision"],
    "02_binarization": ["Eq. 1 interactively", "A binary network learning"],
    "06_bitpacking_32x": ["Packed bytes of a layer"],
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site() -> Path:
    return ensure_built()


def resolve(page: Path, link: str, root: Path) -> tuple[Path, str] | None:
    """The file and fragment an internal link points to (None for external links)."""
    if EXTERNAL.match(link):
        return None
    parts = urlsplit(link)
    target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def test_the_build_has_no_warning(site):
    warnings = WARNINGS.read_text()
    assert warnings.strip() == "", f"the documentation build warned:\n{warnings}"


def test_every_internal_link_and_anchor_resolves(site):
    broken = []
    for page in pages(site):
        for link in parse(page).links:
            found = resolve(page, link, site)
            if found is None:
                continue
            target, fragment = found
            where = f"{page.relative_to(site)}: {link}"
            if not target.exists():
                broken.append(f"{where} (no file {target})")
            elif site not in target.parents:
                broken.append(f"{where} (outside the site)")
            elif fragment and target.suffix == ".html" and fragment not in parse(target).ids:
                broken.append(f"{where} (no anchor #{fragment})")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:50])


def test_the_link_checker_finds_a_broken_link(site, tmp_path):
    """The checker above can fail: a page with a missing file and a missing anchor."""
    page = tmp_path / "page.html"
    page.write_text('<a id="here" href="#here">ok</a><a href="missing.html">x</a><a href="page.html#nowhere">y</a>')
    results = [resolve(page, link, tmp_path) for link in parse(page).links]
    assert results[0] == (page, "here") and "here" in parse(page).ids
    assert not results[1][0].exists()
    assert results[2][1] not in parse(results[2][0]).ids
    assert resolve(page, "https://example.org/", tmp_path) is None


def test_api_reference_lists_every_public_name(site):
    ids = set().union(*(parse(page).ids for page in (site / "api").glob("*.html")))
    missing = [name for name in binedu.__all__ if f"binedu.{name}" not in ids]
    assert not missing, f"binedu.__all__ names missing from the API reference: {missing}"
    for module_name in COURSE_MODULES:
        module = importlib.import_module(module_name)
        public = [name for name in module.__all__ if callable(getattr(module, name))]
        missing = [name for name in public if f"{module_name}.{name}" not in ids]
        assert not missing, f"{module_name}: missing from the API reference: {missing}"


def test_every_notebook_is_a_page_with_its_outputs(site):
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 8
    for notebook in notebooks:
        page = site / "course" / f"{notebook.stem}.html"
        assert page.exists(), f"{notebook.name} has no page in the site"
        text = page.read_text(encoding="utf-8")
        code_cells = sum(cell["cell_type"] == "code" for cell in json.loads(notebook.read_text())["cells"])
        outputs = text.count('class="cell_output')
        assert outputs >= code_cells // 2, f"{page.name}: {outputs} outputs for {code_cells} code cells: not executed?"
        assert "Traceback" not in text and "Error displaying widget" not in text, f"{page.name} shows an error"
        assert parse(page).images, f"{page.name} shows no figure"


def test_widget_pages_show_their_stand_ins(site):
    for notebook, titles in WIDGET_NOTEBOOKS.items():
        text = (site / "course" / f"{notebook}.html").read_text(encoding="utf-8")
        assert "application/vnd.jupyter.widget-view+json" not in text, f"{notebook}: a live widget on a static page"
        for title in titles:
            assert f"<b>{title}</b>" in text, f"{notebook}: no stand-in {title!r}"


def test_every_paper_element_has_its_page(site):
    for name in PAPER_PAGES:
        page = site / "paper" / f"{name}.html"
        assert page.exists(), f"no page for {name}"
        text = page.read_text(encoding="utf-8")
        assert 'class="highlight-python' in text, f"{name}: no code"
        assert "math notranslate" in text, f"{name}: no equation"
        course_links = [link for link in parse(page).links if link.startswith("../course/") and "#" in link]
        assert course_links, f"{name}: no link to the notebook section that teaches it"
        api_links = [link for link in parse(page).links if link.startswith("../api/") and "#binedu." in link]
        assert api_links, f"{name}: no link to the API reference of the code"


def test_optional_pages_join_the_table_of_contents(site):
    """Pages other parts of the project write (guides, teaching) are in a toctree when present."""
    conf = (DOCS / "conf.py").read_text()
    for entry in ("guides/speed", "guides/scaling", "teaching/"):
        assert entry in conf
    for page in ("guides/speed", "guides/scaling"):
        if (DOCS / f"{page}.md").exists():
            assert (site / f"{page}.html").exists(), f"{page}.md was not built"
