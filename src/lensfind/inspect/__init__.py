"""Visual inspection of a run's candidates: ``engine inspect``.

A local web page of the ranked candidates (colour composites, each band, an
occlusion map on demand), keyboard grading into ``RUN/grades.csv``, and a
static export of the same pages. The implementation modules:

* :mod:`~lensfind.inspect.run_view`: candidates and their cutouts from a run directory;
* :mod:`~lensfind.inspect.grades`: the grades file (atomic rewrites);
* :mod:`~lensfind.inspect.thumbnails`: display images (Lupton composites) as PNG;
* :mod:`~lensfind.inspect.saliency`: occlusion maps with the run's ONNX model;
* :mod:`~lensfind.inspect.page`, :mod:`~lensfind.inspect.server`,
  :mod:`~lensfind.inspect.export`: the pages, served live or written to disk.
"""

from lensfind.inspect.grades import GRADES, GRADES_NAME, Grade, GradesError, GradesFile
from lensfind.inspect.run_view import Candidate, InspectError, InspectRun

__all__ = [
    "GRADES", "GRADES_NAME", "Candidate", "Grade", "GradesError", "GradesFile", "InspectError",
    "InspectRun",
]  # fmt: skip
