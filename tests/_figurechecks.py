"""A check shared by the notebook tests: each figure is drawn once, and the report shows the files."""
from __future__ import annotations

import base64
import re
from pathlib import Path


def assert_figures_shown_once_as_saved(notebook: Path, figures: Path, html: Path | None = None) -> None:
    """The executed ``notebook`` shows every PNG in ``figures`` exactly once, as the very bytes
    saved (``raidstudy.report.plots.show_figure``: the figure is drawn once), and no other
    picture (none left for the inline backend to draw again); so does the ``html`` report."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    shown = [base64.b64decode(o["data"]["image/png"]) for c in nb.cells if c.cell_type == "code"
             for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    saved = {p.name: p.read_bytes() for p in sorted(figures.glob("*.png"))}
    assert saved, f"no figures in {figures}"
    assert len(shown) == len(saved), f"{len(shown)} pictures shown for {len(saved)} figures saved: {sorted(saved)}"
    missing = [name for name, png in saved.items() if png not in shown]
    assert not missing, f"shown pictures differ from the saved files: {missing}"
    if html is not None:
        found = [base64.b64decode(m) for m in re.findall(r'data:image/png;base64,([A-Za-z0-9+/=\s]+)"',
                                                         html.read_text())]
        assert sorted(found) == sorted(saved.values()), "the report's pictures are not the saved figures"
