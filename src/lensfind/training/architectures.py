"""Network architectures (torch), built by name from one registry.

Every model that :func:`build_model` returns maps ``(N, bands, H, W)`` float32
normalised cutouts to one lens logit per object, shape ``(N,)``; the lens
probability is its sigmoid. Models are batch-safe (in eval mode a row's output
does not depend on the rest of the batch), use no in-place activations and no
module twice, so hook-based saliency (Grad-CAM, guided backpropagation) stays
valid.

=================  ===================  ========================  ======  ==================
name               paper                input (channel order)     norm.   implementation
=================  ===================  ========================  ======  ==================
ou66               Wilde+22 Table 3     J,Y,H,VIS 66x66           minmax  :mod:`.arch.wilde`
ou66_j/_y/_h       Wilde+22 (OU-J/Y/H)  one NISP band 66x66       minmax  :mod:`.arch.wilde`
ou66_jyh           Wilde+22 (OU-JYH)    J,Y,H 66x66               minmax  :mod:`.arch.wilde`
ou200              Wilde+22 Table 4     J,Y,H,VIS 200x200         minmax  :mod:`.arch.wilde`
ou200_vis          Wilde+22 (OU-VIS)    VIS 200x200               minmax  :mod:`.arch.wilde`
jacobs_des         Jacobs+22            g,r,i,z 100x100           asinh   :mod:`.arch.jacobs`
resnet18_1band     van Lohuizen 2021    one band (r) 101x101      asinh   :mod:`.arch.resnet`
resnet_small_1band lensfind (vL, 1/8)   one band (r) 101x101      asinh   :mod:`.arch.resnet`
lensfind_des_compact  lensfind default  g,r,i,z 100x100           asinh   :mod:`.arch.compact`
=================  ===================  ========================  ======  ==================

The input convention (channel order and normalisation,
:mod:`lensfind.runtime.normalisation`) is part of each entry: training feeds
the network its bands in that order whatever the order of the set
(:func:`input_bands`), and the model card records it, so scorers reorder a
survey's bands to it. The Wilde+22 entries follow the authors' code
(github.com/JoshWilde/LensFindery-McLensFinderFace): every band of every stamp
scaled to [0, 1] by its own min and max, stacked J, Y, H, VIS
(``Get66Images`` in ``Interpretability/Code/ImagesActivatingKernels.ipynb``,
``OU200_LoadImages`` and ``JYH_LoadImages`` in ``CNN Models/Load_Images.py``).

The Wilde+22 models keep the paper's 2-way head and state-dict keys
(``layer.<i>.*``, ``fc_layer.0.*``, ``fc_layer.2.*``); their forward returns
``z_lens - z_nonlens`` (class index 1 is "lens"), see :mod:`.arch.wilde`.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from lensfind.errors import ConfigError
from lensfind.runtime.normalisation import NORMALISATION_KINDS
from lensfind.surveys.spec import SurveySpec
from lensfind.training._torch import nn
from lensfind.training.arch.compact import LensfindDESCompact
from lensfind.training.arch.jacobs import JacobsDESNet
from lensfind.training.arch.resnet import SMALL_WIDTHS, ResNet18
from lensfind.training.arch.wilde import (
    OU66_DENSE,
    OU66_OPS,
    OU200_DENSE,
    OU200_OPS,
    WildeCNN,
    WildeLensLogit,
    ou66,
    ou200,
)

__all__ = [
    "ARCHITECTURES",
    "ArchitectureInfo",
    "JacobsDESNet",
    "LensfindDESCompact",
    "ResNet18",
    "WildeCNN",
    "WildeLensLogit",
    "architecture_names",
    "build_model",
    "input_bands",
    "list_architectures",
    "ou66",
    "ou200",
]

DEFAULT_ARCH = "lensfind_des_compact"

WILDE22 = "Wilde, Serjeant, Bromley et al. 2022"
JACOBS22 = "Jacobs, Glazebrook, Qin & Collett 2022"
VANLOHUIZEN21 = "van Lohuizen 2021 (MSc thesis, Groningen); Petrillo et al. 2019"
LENS_LOGIT = "lens logit (N,); p_lens = sigmoid(logit)"
WILDE_OUTPUT = "lens logit (N,) = z_lens - z_nonlens of the 2-way head; p_lens = sigmoid"


@dataclass(frozen=True)
class ArchitectureInfo:
    """What an architecture expects and returns.

    Attributes
    ----------
    name : str
        Registry name.
    paper : str
        Where the architecture comes from.
    bands : tuple of str
        Input bands in channel order, as in the paper (the default input; with
        ``bands_rule="exact"`` the order the network takes them in).
    size_px : int
        Input side in pixels, as in the paper (the default input).
    bands_rule : {"exact", "count", "any"}
        What a survey must match: the band names in order, only their number,
        or nothing (the model adapts to any number of bands).
    size_rule : {"exact", "any"}
        Whether the input side must equal ``size_px``.
    output : str
        What ``forward`` returns.
    notes : str
        Choices made where the paper is silent.
    normalisation : {"asinh", "minmax"}
        The input normalisation models of this architecture are trained with
        by default (:mod:`lensfind.runtime.normalisation`).
    """

    name: str
    paper: str
    bands: tuple[str, ...]
    size_px: int
    bands_rule: Literal["exact", "count", "any"]
    size_rule: Literal["exact", "any"]
    output: str
    notes: str = ""
    normalisation: str = "asinh"

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATION_KINDS:
            raise ConfigError(f"{self.name}: unknown normalisation {self.normalisation!r}")


_NISP = "VIS band resampled to the NISP grid"
_WILDE_INPUT = "channels J, Y, H, VIS and [0, 1] min-max scaling as the authors' loader"
_MM = "minmax"
_INFOS = (
    ArchitectureInfo("ou66", WILDE22, ("J", "Y", "H", "VIS"), 66, "exact", "exact",
                     WILDE_OUTPUT, f"Table 3; {_NISP} (66x66 at 0.3\"/px); {_WILDE_INPUT}",
                     _MM),
    ArchitectureInfo("ou66_j", WILDE22, ("J",), 66, "exact", "exact", WILDE_OUTPUT, "OU-J",
                     _MM),
    ArchitectureInfo("ou66_y", WILDE22, ("Y",), 66, "exact", "exact", WILDE_OUTPUT, "OU-Y",
                     _MM),
    ArchitectureInfo("ou66_h", WILDE22, ("H",), 66, "exact", "exact", WILDE_OUTPUT, "OU-H",
                     _MM),
    ArchitectureInfo("ou66_jyh", WILDE22, ("J", "Y", "H"), 66, "exact", "exact", WILDE_OUTPUT,
                     "OU-JYH; channel order J, Y, H as the authors' JYH_LoadImages", _MM),
    ArchitectureInfo("ou200", WILDE22, ("J", "Y", "H", "VIS"), 200, "exact", "exact",
                     WILDE_OUTPUT, "Table 4; NISP bands resampled to the VIS grid (0.1\"/px); "
                     f"{_WILDE_INPUT}", _MM),
    ArchitectureInfo("ou200_vis", WILDE22, ("VIS",), 200, "exact", "exact", WILDE_OUTPUT,
                     "OU-VIS", _MM),
    ArchitectureInfo("jacobs_des", JACOBS22, ("g", "r", "i", "z"), 100, "exact", "exact",
                     LENS_LOGIT, "10 conv + 2x256 dense as stated; widths, pooling, batch "
                     "norm and dropout reconstructed (see lensfind.training.arch.jacobs)"),
    ArchitectureInfo("resnet18_1band", VANLOHUIZEN21, ("r",), 101, "count", "any", LENS_LOGIT,
                     "ResNet18, one input band, one output (sigmoid in the loss)"),
    ArchitectureInfo("resnet_small_1band", VANLOHUIZEN21, ("r",), 101, "count", "any",
                     LENS_LOGIT, "resnet18_1band at 1/8 width (stages of 8, 16, 32, 64 "
                     "channels, 0.18 M parameters) for CPU-sized loss studies"),
    ArchitectureInfo(DEFAULT_ARCH, "lensfind (default des_y3 model)", ("g", "r", "i", "z"), 100,
                     "any", "any", LENS_LOGIT, "built for CPU speed; any bands and size"),
)  # fmt: skip

#: Registry name -> :class:`ArchitectureInfo` (read-only).
ARCHITECTURES: Mapping[str, ArchitectureInfo] = MappingProxyType({i.name: i for i in _INFOS})

# name -> builder(bands, size_px); the registry checks the input before calling.
_BUILDERS: dict[str, Callable[[int, int], nn.Module]] = {
    "ou66": lambda b, s: WildeLensLogit(b, s, OU66_OPS, OU66_DENSE),
    "ou66_j": lambda b, s: WildeLensLogit(b, s, OU66_OPS, OU66_DENSE),
    "ou66_y": lambda b, s: WildeLensLogit(b, s, OU66_OPS, OU66_DENSE),
    "ou66_h": lambda b, s: WildeLensLogit(b, s, OU66_OPS, OU66_DENSE),
    "ou66_jyh": lambda b, s: WildeLensLogit(b, s, OU66_OPS, OU66_DENSE),
    "ou200": lambda b, s: WildeLensLogit(b, s, OU200_OPS, OU200_DENSE),
    "ou200_vis": lambda b, s: WildeLensLogit(b, s, OU200_OPS, OU200_DENSE),
    "jacobs_des": lambda b, s: JacobsDESNet(b, s),
    "resnet18_1band": lambda b, s: ResNet18(b),
    "resnet_small_1band": lambda b, s: ResNet18(b, SMALL_WIDTHS),
    DEFAULT_ARCH: lambda b, s: LensfindDESCompact(b, s),
}
assert _BUILDERS.keys() == ARCHITECTURES.keys()


def architecture_names() -> list[str]:
    """Registry names, sorted."""
    return sorted(ARCHITECTURES)


def list_architectures() -> list[ArchitectureInfo]:
    """Every registered architecture, sorted by name."""
    return [ARCHITECTURES[k] for k in sorted(ARCHITECTURES)]


def _info(name: str) -> ArchitectureInfo:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(architecture_names())
        raise ConfigError(f"unknown architecture {name!r} (known: {known})") from None


def input_bands(name: str, available: Sequence[str]) -> tuple[str, ...]:
    """The bands, in the network's channel order, a ``name`` model takes from ``available``.

    Parameters
    ----------
    name : str
        Registry name.
    available : sequence of str
        Band names of a survey or simulated set, in its order.

    Returns
    -------
    tuple of str
        ``ARCHITECTURES[name].bands`` for architectures that fix their bands
        (``bands_rule="exact"``: picked from ``available`` and put in the
        architecture's order, e.g. J, Y, H, VIS for ``ou66`` from Euclid's VIS,
        Y, J, H); ``available`` unchanged for the others.

    Raises
    ------
    ConfigError
        ``available`` lacks a band the architecture takes.
    """
    info = _info(name)
    available = tuple(available)
    if info.bands_rule != "exact":
        return available
    missing = [b for b in info.bands if b not in available]
    if missing:
        raise ConfigError(
            f"{name} takes bands {', '.join(info.bands)}; the input has "
            f"{', '.join(available)} (no {', '.join(missing)})"
        )
    return info.bands


def _resolve_input(
    info: ArchitectureInfo,
    survey: SurveySpec | str | int | None,
    size_px: int | None,
    bands: int | Sequence[str] | None,
) -> tuple[int, int]:
    """The (number of bands, side in px) to build ``info`` for, after checking them."""
    if isinstance(survey, str):
        from lensfind.surveys.registry import get_survey

        survey = get_survey(survey)
    names: tuple[str, ...] | None  # None: only the number of bands is known
    if isinstance(survey, SurveySpec):
        if bands is not None or size_px is not None:
            raise ConfigError(f"{info.name}: give either a survey or bands/size_px, not both")
        names, n, size = survey.band_names, len(survey.bands), survey.cutout_px
        where = f"survey {survey.name} ({', '.join(names)} at {size}x{size} px)"
    else:
        if survey is not None and bands is not None:
            raise ConfigError(f"{info.name}: bands given twice ({survey!r} and {bands!r})")
        given = survey if survey is not None else bands
        if isinstance(given, int):
            names, n = None, given
        else:
            names = info.bands if given is None else tuple(given)
            n = len(names)
        size = info.size_px if size_px is None else size_px
        shown = ", ".join(names) if names is not None else f"{n} band(s)"
        where = f"the input ({shown} at {size}x{size} px)"
    paper = f"{', '.join(info.bands)} at {info.size_px}x{info.size_px} px ({info.paper})"
    # the same bands in another order are the same input: scorers and training put the
    # survey's bands in the architecture's order (input_bands)
    if info.bands_rule == "exact" and names is not None and sorted(names) != sorted(info.bands):
        raise ConfigError(
            f"{info.name} expects bands {', '.join(info.bands)}, not those of {where}; "
            f"the paper model takes {paper} (pick bands with SurveySpec.select)"
        )
    if info.bands_rule in ("exact", "count") and n != len(info.bands):
        raise ConfigError(
            f"{info.name} expects {len(info.bands)} band(s), not the {n} of {where}; "
            f"the paper model takes {paper}"
        )
    if info.size_rule == "exact" and size != info.size_px:
        raise ConfigError(
            f"{info.name} expects {info.size_px}x{info.size_px} px cutouts, not those of "
            f"{where}; the paper model takes {paper} (resample the cutouts, e.g. "
            f"SurveySpec.select(bands, cutout_px={info.size_px}))"
        )
    if n < 1 or size < 1:
        raise ConfigError(f"{info.name}: {where} is not a valid input")
    return n, size


def build_model(
    name: str,
    survey: SurveySpec | str | int | None = None,
    size_px: int | None = None,
    *,
    bands: int | Sequence[str] | None = None,
) -> nn.Module:
    """Build architecture ``name`` for the input of ``survey`` (default: the paper's).

    Parameters
    ----------
    name : str
        Registry name (:data:`ARCHITECTURES`).
    survey : SurveySpec or str, optional
        The survey whose bands and ``cutout_px`` the model takes; a name is
        looked up in the survey registry. An architecture with fixed bands
        accepts them in any order: the network takes them in its own
        (``ARCHITECTURES[name].bands``, see :func:`input_bands`). Without one (and without
        ``bands``/``size_px``) the model takes its paper input
        (``ARCHITECTURES[name].bands`` at ``.size_px``). An ``int`` here is the
        number of bands (the older ``build_model(name, bands, size_px)`` form).
    size_px : int, optional
        Input side in pixels, when no survey is given.
    bands : int or sequence of str, optional
        Number of bands, or band names in channel order, when no survey is given.

    Returns
    -------
    torch.nn.Module
        A freshly initialised model whose forward maps ``(N, bands, H, W)`` to
        lens logits ``(N,)``.

    Raises
    ------
    ConfigError
        Unknown ``name``, or an input that does not match what the architecture
        takes (the message names the architecture, the survey and both inputs).
    """
    info = _info(name)
    n_bands, size = _resolve_input(info, survey, size_px, bands)
    return _BUILDERS[name](n_bands, size)
