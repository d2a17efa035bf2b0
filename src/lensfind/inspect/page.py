"""The inspection pages as HTML: the ranked gallery and one page per candidate.

The same pages are served live by :mod:`lensfind.inspect.server` and written by
:mod:`lensfind.inspect.export`; every link is relative (``thumbs/<id>.png``,
``candidates/<id>.html``, ``bands/<id>_<band>.png``, ``saliency/<id>.json``),
so a gallery directory works from any web server or from disk. ``live=False``
pages show grades read-only and leave out the on-demand occlusion map.
Behaviour (filters, keyboard grading) is ``static/inspect.js``; no build step.
"""

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from lensfind.inspect.grades import GRADES
from lensfind.inspect.run_view import Candidate

__all__ = ["candidate_html", "gallery_html"]

HELP = ("keys: <b>a</b> sure lens, <b>b</b> probable, <b>c</b> possible, <b>x</b> not a lens "
        "(grade and move on); <b>&larr;/&rarr;</b> or <b>j/k</b> move; ")  # fmt: skip


def _json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element."""
    return json.dumps(data).replace("</", "<\\/")


def _fmt(value: float, digits: int = 3) -> str:
    return "&ndash;" if value != value else f"{value:.{digits}f}"  # NaN


def _head(title: str, prefix: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>"
            f'<link rel="icon" href="data:,">'
            f'<link rel="stylesheet" href="{prefix}static/inspect.css"></head>')  # fmt: skip


def _known(c: Candidate) -> str:
    if not c.known_name:
        return ""
    grade = f" ({html.escape(c.known_grade)})" if c.known_grade else ""
    sep = "" if c.known_sep_arcsec != c.known_sep_arcsec else f", {c.known_sep_arcsec:.1f}&Prime;"
    return f'<span class="known">known: {html.escape(c.known_name)}{grade}{sep}</span>'


def gallery_html(
    title: str,
    candidates: Sequence[Candidate],
    grades: Mapping[int, str],
    *,
    live: bool,
    grader: str = "",
    notes: Sequence[str] = (),
) -> str:
    """The gallery page: every candidate's thumbnail, ranked, with filters and grading.

    Parameters
    ----------
    title : str
        Page title (the run's name).
    candidates : sequence of Candidate
        In rank order.
    grades : mapping of int to str
        object_id -> grade letter, shown on the cards.
    live : bool
        Grading on (served by ``engine inspect``) or read-only (an exported gallery).
    grader : str
        The grader's name shown in the header.
    notes : sequence of str
        Lines of plain text shown under the title (e.g. the run's prior lens rate).
    """
    cards = []
    for c in candidates:
        g = grades.get(c.object_id, "")
        cards.append(
            f'<div class="card" id="c{c.object_id}" data-id="{c.object_id}" '
            f'data-score="{c.score:.6g}" data-known="{1 if c.known_name else 0}" '
            f'data-grade="{g}"><a href="candidates/{c.object_id}.html">'
            f'<img src="thumbs/{c.object_id}.png" width="100" height="100" loading="lazy" '
            f'alt="{c.object_id}"></a><div class="meta"><span class="rank">#{c.rank}</span> '
            f'<span class="oid">{c.object_id}</span><br>score {_fmt(c.score)} '
            f"&middot; p {_fmt(c.p_lens, 2)}<br>{_known(c)}"
            f'<span class="grade g{g}">{g}</span></div></div>'
        )
    mode = "grades save to grades.csv" if live else "static gallery: grades as exported"
    who = f" &middot; grader <b>{html.escape(grader)}</b>" if grader else ""
    note = "".join(f"<div class='note'>{html.escape(n)}</div>" for n in notes)
    config = {"live": live, "grades": list(GRADES), "meaning": GRADES}
    return (
        _head(f"{title}: candidates", "") + f"<body><header><h1>{html.escape(title)}</h1>"
        f"<div class='note'>{len(candidates)} candidates, ranked by score; p = lens "
        f"probability at the run's prior lens rate; {mode}{who}</div>{note}"
        '<form id="filters" onsubmit="return false">'
        'score <input id="smin" type="number" step="any" value="0" size="6"> to '
        '<input id="smax" type="number" step="any" value="1" size="6"> '
        '<select id="known"><option value="">known and unknown</option>'
        '<option value="1">known lenses</option><option value="0">unknown</option></select> '
        '<select id="grade"><option value="">any grade</option>'
        '<option value="-">ungraded</option>'
        + "".join(f'<option value="{g}">{g}: {m}</option>' for g, m in GRADES.items())
        + '</select> <span id="shown"></span></form>'
        f"<div class='help'>{HELP}<b>Enter</b> opens the current candidate</div>"
        "<div id='status' role='status'></div></header>"
        f'<main id="gallery">{"".join(cards)}</main>'
        f'<script id="config" type="application/json">{_json(config)}</script>'
        '<script src="static/inspect.js"></script></body></html>'
    )


def candidate_html(
    c: Candidate,
    bands: Sequence[str],
    grade: str,
    *,
    live: bool,
    previous_id: int | None,
    next_id: int | None,
    ra_dec_digits: int = 6,
) -> str:
    """One candidate's page: the composite, each band, the occlusion map (live only).

    Parameters
    ----------
    c : Candidate
        The candidate.
    bands : sequence of str
        Band names of its cutout, in channel order (one image each).
    grade : str
        Its grade letter, or ``""``.
    live : bool
        Served by ``engine inspect`` (grading and the occlusion map) or exported.
    previous_id, next_id : int or None
        The neighbouring candidates in rank order (keyboard navigation).
    ra_dec_digits : int
        Decimals of RA and Dec (degrees).
    """
    oid = c.object_id
    panels = [f'<figure><img class="big" src="../thumbs/{oid}.png" alt="composite">'
              "<figcaption>gri composite (Lupton asinh)</figcaption></figure>"]  # fmt: skip
    for b in bands:
        panels.append(f'<figure><img class="big" src="../bands/{oid}_{html.escape(b)}.png" '
                      f'alt="{html.escape(b)}"><figcaption>{html.escape(b)} band (asinh)'
                      "</figcaption></figure>")  # fmt: skip
    if live:
        panels.append(
            f'<figure id="saliency" data-src="../saliency/{oid}.json"><img class="big" alt="">'
            "<figcaption>occlusion map: computing&hellip;</figcaption></figure>"
        )
    else:
        panels.append("<figure><figcaption>occlusion map: served live by "
                      "<code>engine inspect</code></figcaption></figure>")  # fmt: skip
    config = {"live": live, "object_id": oid, "previous": previous_id, "next": next_id,
              "grades": list(GRADES), "meaning": GRADES}  # fmt: skip
    rows = [("rank", f"{c.rank}"), ("RA, Dec (deg)",
             f"{c.ra_deg:.{ra_dec_digits}f}, {c.dec_deg:.{ra_dec_digits}f}"),
            ("tile", html.escape(c.tile)), ("score", _fmt(c.score, 4)),
            ("p (lens at the run's prior)", _fmt(c.p_lens, 4)),
            ("known lens", _known(c) or "none within the match radius")]  # fmt: skip
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        _head(f"candidate {oid}", "../")
        + f'<body class="detail"><header><a href="../index.html#c{oid}">&larr; all candidates</a>'
        f"<h1>candidate {oid} <span id='grade' class='grade g{grade}'>{grade}</span></h1>"
        f"<div class='help'>{HELP}<b>Esc</b> back to all candidates</div>"
        f"<div id='status' role='status'></div></header>"
        f"<table class='facts'>{table}</table><div class='panels'>{''.join(panels)}</div>"
        f'<script id="config" type="application/json">{_json(config)}</script>'
        '<script src="../static/inspect.js"></script></body></html>'
    )
