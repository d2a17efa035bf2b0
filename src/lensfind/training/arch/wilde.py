"""OU-66 and OU-200 (Wilde et al. 2022, Tables 3 and 4) and their band variants.

Both are plain stacks of valid (unpadded) convolutions, each followed by a ReLU,
with 2x2 max-pooling (stride 2: the tables print the stride as (1,1) but every
pool halves the side) and dropout p = 0.2, then two dense layers. The module
layout reproduces the layer numbering of the tables, so that the authors'
published weights load with ``strict=True``:

* ``layer`` (``nn.Sequential``): table rows 0..29 (OU-66) or 0..21 (OU-200),
  ReLU rows included;
* ``fc_layer`` (``nn.Sequential``): the dense rows, ``fc_layer.0`` (Linear),
  ``fc_layer.1`` (ReLU), ``fc_layer.2`` (Linear, 2 outputs).

OU-66, input 4x66x66 (J, Y, H, VIS resampled to 66 px, each scaled to [0, 1]),
203,192 parameters::

    idx  layer                     output      params
    0    Conv 3x3, 4->50, valid    50x64x64     1,850
    2    MaxPool 2x2               50x32x32
    3    Dropout 0.2
    4    Conv 3x3, 50->50          50x30x30    22,550
    6    Dropout 0.2
    7    Conv 3x3, 50->50          50x28x28    22,550
    9    Dropout 0.2
    10   Conv 3x3, 50->50          50x26x26    22,550
    12   Dropout 0.2
    13   Conv 3x3, 50->40          40x24x24    18,040
    15   MaxPool 2x2               40x12x12
    16   Dropout 0.2
    17   Conv 3x3, 40->40          40x10x10    14,440
    19   Dropout 0.2
    20   Conv 3x3, 40->40          40x8x8      14,440
    22   Dropout 0.2
    23   Conv 3x3, 40->40          40x6x6      14,440
    25   Dropout 0.2
    26   Conv 3x3, 40->30          30x4x4      10,830
    28   MaxPool 2x2               30x2x2
    29   Dropout 0.2
    fc.0 Dense 120->500 (+ReLU)    500         60,500
    fc.2 Dense 500->2              2            1,002

OU-200, input 4x200x200, 331,632 parameters (Table 4 prints 50 kernels for
row 4, but its output shape and parameter count, 50,040 = 50*25*40 + 40, are
those of 40 kernels)::

    idx  layer                     output      params
    0    Conv 5x5, 4->50, valid    50x196x196   5,050
    2    MaxPool 2x2               50x98x98
    3    Dropout 0.2
    4    Conv 5x5, 50->40          40x94x94    50,040
    6    MaxPool 2x2               40x47x47
    7    Dropout 0.2
    8    Conv 3x3, 40->30          30x45x45    10,830
    10   MaxPool 2x2               30x22x22
    11   Dropout 0.2
    12   Conv 3x3, 30->20          20x20x20     5,420
    14   MaxPool 2x2               20x10x10
    15   Dropout 0.2
    16   Conv 3x3, 20->20          20x8x8       3,620
    18   Dropout 0.2
    19   Conv 3x3, 20->20          20x6x6       3,620
    21   Dropout 0.2
    fc.0 Dense 720->350 (+ReLU)    350        252,350
    fc.2 Dense 350->2              2              702

Output convention: the 2-way head gives class logits ``(N, 2)`` with index 0 =
non-lens and index 1 = lens (Wilde+22 label lenses 1 and non-lenses 0, Fig. 11,
and train with categorical cross-entropy on class indices; the softmax of the
tables is left to the loss). :class:`WildeLensLogit` returns the project's one
lens logit per object, ``z_lens - z_nonlens``, whose sigmoid equals the softmax
lens probability exactly; it adds no parameters, so its state-dict keys are the
paper module's.
"""

from collections.abc import Sequence

from lensfind.training._torch import nn, torch

# One entry per table row that is not a ReLU: ("conv", kernel_px, out_channels),
# ("pool", 2, 0) or ("drop", 0, 0). Every conv is followed by its own ReLU.
LayerOp = tuple[str, int, int]
_POOL: LayerOp = ("pool", 2, 0)
_DROP: LayerOp = ("drop", 0, 0)

OU66_OPS: tuple[LayerOp, ...] = (
    ("conv", 3, 50), _POOL, _DROP,
    ("conv", 3, 50), _DROP,
    ("conv", 3, 50), _DROP,
    ("conv", 3, 50), _DROP,
    ("conv", 3, 40), _POOL, _DROP,
    ("conv", 3, 40), _DROP,
    ("conv", 3, 40), _DROP,
    ("conv", 3, 40), _DROP,
    ("conv", 3, 30), _POOL, _DROP,
)  # fmt: skip
OU200_OPS: tuple[LayerOp, ...] = (
    ("conv", 5, 50), _POOL, _DROP,
    ("conv", 5, 40), _POOL, _DROP,
    ("conv", 3, 30), _POOL, _DROP,
    ("conv", 3, 20), _POOL, _DROP,
    ("conv", 3, 20), _DROP,
    ("conv", 3, 20), _DROP,
)  # fmt: skip
OU66_DENSE = 500
OU200_DENSE = 350
DROPOUT = 0.2
LENS_INDEX = 1  # class index of "lens" in the 2-way head


class WildeCNN(nn.Module):
    """The paper module of Wilde et al. 2022: cutouts -> 2 class logits.

    Parameters
    ----------
    bands : int
        Input channels (4 for OU-66/OU-200, 1 for OU-J/Y/H/VIS, 3 for OU-JYH).
    size_px : int
        Input side in pixels (66 for OU-66, 200 for OU-200).
    ops : sequence of LayerOp
        The table rows (:data:`OU66_OPS` or :data:`OU200_OPS`).
    dense : int
        Width of the hidden dense layer (500 for OU-66, 350 for OU-200).
    dropout : float
        Dropout probability after every convolution block (0.2).

    Weights are initialised with He (Kaiming) normal initialisation and zero
    biases, as in Wilde+22 sec. 3.2.
    """

    def __init__(
        self,
        bands: int,
        size_px: int,
        ops: Sequence[LayerOp],
        dense: int,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, side = bands, size_px
        for kind, k, c_out in ops:
            if kind == "conv":
                layers += [nn.Conv2d(channels, c_out, k), nn.ReLU()]
                channels, side = c_out, side - k + 1
            elif kind == "pool":
                layers.append(nn.MaxPool2d(k))
                side //= k
            elif kind == "drop":
                layers.append(nn.Dropout(dropout))
            else:
                raise ValueError(f"unknown layer kind {kind!r} in the Wilde+22 layer table")
            if side < 1:
                raise ValueError(f"input side {size_px} px is too small for this layer table")
        self.layer = nn.Sequential(*layers)
        self.flat_features = channels * side * side
        self.fc_layer = nn.Sequential(
            nn.Linear(self.flat_features, dense),
            nn.ReLU(),
            nn.Linear(dense, 2),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def class_logits(self, x: "torch.Tensor") -> "torch.Tensor":
        """Class logits ``(N, 2)``: index 0 non-lens, index 1 lens."""
        return self.fc_layer(torch.flatten(self.layer(x), 1))

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.class_logits(x)


class WildeLensLogit(WildeCNN):
    """A :class:`WildeCNN` whose forward returns the lens logit ``(N,)``.

    ``forward(x) = z[:, lens_index] - z[:, 1 - lens_index]`` with ``z`` the class
    logits, so ``sigmoid(forward(x))`` is the 2-way softmax lens probability.
    Same modules and state-dict keys as the paper module; ``lens_index`` is a
    plain attribute (not saved), 1 by default (see the module docstring).
    """

    def __init__(
        self,
        bands: int,
        size_px: int,
        ops: Sequence[LayerOp],
        dense: int,
        dropout: float = DROPOUT,
        lens_index: int = LENS_INDEX,
    ) -> None:
        super().__init__(bands, size_px, ops, dense, dropout)
        if lens_index not in (0, 1):
            raise ValueError(f"lens_index must be 0 or 1, not {lens_index!r}")
        self.lens_index = lens_index

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        z = self.class_logits(x)
        return z[:, self.lens_index] - z[:, 1 - self.lens_index]


def ou66(bands: int = 4, *, lens_logit: bool = False) -> WildeCNN:
    """OU-66 (Table 3) for ``bands`` x 66 x 66 inputs; 2 class logits unless ``lens_logit``."""
    cls = WildeLensLogit if lens_logit else WildeCNN
    return cls(bands, 66, OU66_OPS, OU66_DENSE)


def ou200(bands: int = 4, *, lens_logit: bool = False) -> WildeCNN:
    """OU-200 (Table 4) for ``bands`` x 200 x 200 inputs; 2 class logits unless ``lens_logit``."""
    cls = WildeLensLogit if lens_logit else WildeCNN
    return cls(bands, 200, OU200_OPS, OU200_DENSE)
