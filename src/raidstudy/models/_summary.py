"""What every results summary shares: text, notebook HTML and a header of ``(label, value)`` rows."""
from __future__ import annotations

import html


class SummaryDisplay:
    """Mixin for summaries that define ``as_text()``, ``_header()`` (label, value pairs) and
    ``table()`` (a DataFrame of estimates): printing shows the text, a notebook the HTML."""

    #: How floats are written in the HTML table.
    html_float_format = staticmethod(lambda x: f"{x:.5g}")

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        head = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td style='text-align:left'>"
                       f"{html.escape(str(v))}</td></tr>" for k, v in self._header())
        tab = self.table().to_html(float_format=self.html_float_format, border=0)
        return f"<div><table>{head}</table>{tab}</div>"
