"""Survey specifications (bands, pixel scale, PSF, depth, zero points) and registry."""

from lensfind.surveys.registry import get_survey, list_surveys
from lensfind.surveys.spec import BandSpec, SurveySpec

__all__ = ["BandSpec", "SurveySpec", "get_survey", "list_surveys"]
