"""Charts of the fleet pages: pygal SVG rendered on the hub, inlined in the page, readable
without JavaScript.

pygal's default SVG loads its tooltip script from an outside address and always embeds a
small configuration script; the pages' CSP allows no script at all, so the external one is
switched off (js=[]) and the inline one removed. Values are printed on the chart's points'
titles (<title>/<desc>), so a screen reader and a test read the numbers.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence

import pygal
from markupsafe import Markup
from pygal.style import Style

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 720, 260
# Axis labels: at most this many are written, or hourly labels of a week overlap.
MAX_X_LABELS = 12
# Beyond this many points a line's dots are noise (and slow to draw).
MAX_DOTS = 40
SCRIPT_RE = re.compile(r"<script\b.*?</script>", re.S)
COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
# The node screens' palette (kiosk_ui): calm blue, green for good, amber, red for trouble.
STYLE = Style(background="white", plot_background="white", foreground="#1b1f23",
              foreground_strong="#1b1f23", foreground_subtle="#5f6b76",
              colors=("#1565c0", "#2e7d32", "#ef6c00", "#c62828", "#6a1b9a", "#00838f",
                      "#5d4037", "#455a64"),
              font_family="system-ui, sans-serif", title_font_size=14, label_font_size=11)


def _config(title: str, labels: Sequence[str], y_title: str) -> dict:
    step = max(1, len(labels) // MAX_X_LABELS)
    return {"title": title, "x_labels": list(labels),
            "x_labels_major": list(labels)[::step], "show_minor_x_labels": False,
            "y_title": y_title, "js": [], "disable_xml_declaration": True, "style": STYLE,
            "width": WIDTH, "height": HEIGHT, "show_legend": True, "legend_at_bottom": True,
            "no_data_text": "", "include_x_axis": True, "x_label_rotation": 0,
            "truncate_legend": 40, "truncate_label": -1, "dots_size": 2,
            "show_dots": len(labels) <= MAX_DOTS}


# Drawing a chart costs pygal 0.1-1 s; a drawn chart is reused while its data is unchanged,
# and for at most `max_age` seconds (CHART_CACHE_SECONDS) while the data moves: trends, not
# live counters (the tables beside them are read on every request).
MAX_CACHED = 256
_cache: dict[tuple, tuple[float, int, Markup]] = {}
_cache_lock = threading.Lock()


def cached(key: tuple, data: object, draw: Callable[[], Markup], max_age: float) -> Markup:
    """The chart for `key` (name, language, ...) drawn from `data`, or a recent drawing."""
    digest = hash(repr(data))
    now = time.monotonic()
    with _cache_lock:
        kept = _cache.get(key)
    if kept is not None and (kept[1] == digest or now - kept[0] < max_age):
        return kept[2]
    svg = draw()
    with _cache_lock:
        if len(_cache) >= MAX_CACHED:
            _cache.clear()
        _cache[key] = (now, digest, svg)
    return svg


def render(chart: pygal.graph.graph.Graph) -> Markup:
    """The chart's SVG, without scripts or comments, safe to inline."""
    svg = chart.render(is_unicode=True)
    svg = SCRIPT_RE.sub("", svg)
    return Markup(COMMENT_RE.sub("", svg))  # noqa: S704 - pygal's own SVG, values escaped


def line(title: str, labels: Sequence[str], series: dict[str, Sequence[float]],
         y_title: str = "", *, short_labels: Sequence[str] | None = None) -> Markup:
    chart = pygal.Line(**_config(title, short_labels or labels, y_title))
    for name, values in sorted(series.items()):
        chart.add(name, list(values))
    return render(chart)


def bars(title: str, labels: Sequence[str], series: dict[str, Sequence[float]],
         y_title: str = "", *, short_labels: Sequence[str] | None = None) -> Markup:
    chart = pygal.Bar(**_config(title, short_labels or labels, y_title))
    for name, values in sorted(series.items()):
        chart.add(name, list(values))
    return render(chart)
