"""The pages' HTML: cards, known lenses, grades, live and exported variants."""

from lensfind.inspect.page import candidate_html, gallery_html
from lensfind.inspect.run_view import Candidate


def _candidate(oid: int, rank: int, known: str = "") -> Candidate:
    return Candidate(oid, rank, 54.9, -30.1, "DES0340-3005", 0.97, 0.5, known,
                     "A" if known else "", 1.2 if known else float("nan"))  # fmt: skip


def test_gallery_cards():
    cands = [_candidate(11, 1, "DESJ0340-3005 <ring>"), _candidate(12, 2)]
    page = gallery_html("run <1>", cands, {12: "X"}, live=True, grader="ann")
    assert page.index('id="c11"') < page.index('id="c12"')
    assert 'data-known="1"' in page and 'data-known="0"' in page
    assert "DESJ0340-3005 &lt;ring&gt; (A), 1.2&Prime;" in page  # escaped, with grade, sep
    assert 'data-grade="X"' in page and "run &lt;1&gt;" in page and "<b>ann</b>" in page
    assert '"live": true' in page
    assert '"live": false' in gallery_html("r", cands, {}, live=False)


def test_candidate_page_links():
    c = _candidate(11, 1)
    live = candidate_html(c, ("g", "r", "i", "z"), "B", live=True, previous_id=None, next_id=12)
    for b in "griz":
        assert f'src="../bands/11_{b}.png"' in live
    assert 'data-src="../saliency/11.json"' in live and "gB" in live
    assert '"previous": null, "next": 12' in live
    static = candidate_html(c, ("g",), "", live=False, previous_id=10, next_id=None)
    assert "saliency/11" not in static and "served live" in static
