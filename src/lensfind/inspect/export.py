"""``engine inspect RUN --export DIR``: the gallery as static files, to share or archive.

``DIR/index.html`` (the ranked gallery, grades as they stand in ``grades.csv``),
``DIR/candidates/<id>.html``, ``DIR/thumbs/<id>.png``, ``DIR/bands/<id>_<band>.png``,
``DIR/static/`` and a copy of ``grades.csv``: the same pages the server shows,
read-only and without the on-demand occlusion maps.
"""

import shutil
from collections.abc import Callable
from pathlib import Path

from lensfind.inspect import page, thumbnails
from lensfind.inspect.grades import GradesFile
from lensfind.inspect.run_view import InspectRun

__all__ = ["export_gallery"]


def export_gallery(
    run: InspectRun,
    grades: GradesFile,
    out_dir: Path,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write the static gallery of ``run`` into ``out_dir``; its ``index.html``.

    Parameters
    ----------
    run : InspectRun
        The run to show.
    grades : GradesFile
        Its grades (shown on the cards and pages, and copied beside them).
    out_dir : Path
        Output directory (created; files of an earlier export are replaced).
    progress : callable, optional
        Called with 1 after each candidate is written.
    """
    from lensfind.inspect.server import STATIC_DIR, top_note

    out_dir = Path(out_dir)
    for sub in ("candidates", "thumbs", "bands"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    shutil.copytree(STATIC_DIR, out_dir / "static", dirs_exist_ok=True)
    current = grades.current()
    cands = run.candidates
    bands = run.bands
    for k, c in enumerate(cands):
        cutout = run.cutout(c.object_id)
        (out_dir / "thumbs" / f"{c.object_id}.png").write_bytes(
            thumbnails.colour_png(cutout, bands)
        )
        for b, name in enumerate(bands):
            path = out_dir / "bands" / f"{c.object_id}_{name}.png"
            path.write_bytes(thumbnails.band_png(cutout, b))
        html = page.candidate_html(
            c, bands, current.get(c.object_id, ""), live=False,
            previous_id=cands[k - 1].object_id if k else None,
            next_id=cands[k + 1].object_id if k + 1 < len(cands) else None,
        )  # fmt: skip
        (out_dir / "candidates" / f"{c.object_id}.html").write_text(html, encoding="utf-8")
        if progress is not None:
            progress(1)
    if grades.path.is_file():
        shutil.copy2(grades.path, out_dir / grades.path.name)
    index = out_dir / "index.html"
    index.write_text(page.gallery_html(run.run_dir.name, cands, current, live=False,
                                       grader=grades.grader, notes=top_note(run)),
                     encoding="utf-8")  # fmt: skip
    return index
