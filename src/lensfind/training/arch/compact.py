"""The default des_y3 model, ``lensfind_des_compact``.

Its module structure and state-dict keys are frozen: the shipped model was
trained with it (``features.*`` and ``head.*``, see the architecture tests).
"""

from lensfind.training._torch import nn, torch


class LensfindDESCompact(nn.Module):
    """The default des_y3 model: griz 100x100 -> lens logit, built for CPU speed.

    A strided 5x5 stem halves the resolution at once (few channels at full
    resolution), four 3x3 stages with batch norm and max-pooling reach 6x6, and a
    small dense head keeps the spatial layout (arc around a centred deflector).
    About 0.07 GFLOP per 4x100x100 cutout.
    """

    def __init__(self, bands: int = 4, size_px: int = 100, dropout: float = 0.2) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, pool: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
            if pool:
                layers.append(nn.MaxPool2d(2))
            return layers

        self.features = nn.Sequential(
            nn.Conv2d(bands, 16, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            *block(16, 32, pool=True),
            *block(32, 48, pool=True),
            *block(48, 64, pool=True),
            *block(64, 64, pool=False),
        )
        side = size_px
        side = (side + 2 * 2 - 5) // 2 + 1
        for _ in range(3):
            side //= 2
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(64 * side * side, 64),
            nn.ReLU(),
            nn.Linear(64, 1),
        )

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.head(self.features(x)).squeeze(-1)
