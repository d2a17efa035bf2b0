"""The DES lens-finding network of Jacobs et al. 2022 (Networks A and B).

Jacobs+22 (sec. 3.1.2) state only: DES Y3 griz cutouts of 100x100 px, 10
convolutional layers, two fully connected layers of 256 neurons, over 12 million
trainable parameters, and an output that is the probability of the lens class.
Everything else here is our reconstruction and is documented as such:

* VGG-style stages (Simonyan & Zisserman 2014) of two 3x3 "same" convolutions,
  each convolution followed by batch normalisation and its own ReLU;
  widths 64, 128, 256, 512, 512;
* 2x2 max-pooling after the first four stages (100 -> 50 -> 25 -> 12 -> 6 px);
  none after the fifth, so the flattened 512x6x6 = 18,432 features feed the first
  dense layer, which puts the total at 14.2 million parameters (> 12 million);
* dropout 0.5 before each of the two dense layers of 256 (ReLU) and a single
  output logit (the lens probability is its sigmoid).

About 4.4 GFLOP per 4x100x100 cutout.
"""

from lensfind.training._torch import nn, torch

STAGE_WIDTHS = (64, 128, 256, 512, 512)
DENSE = 256


class JacobsDESNet(nn.Module):
    """Jacobs+22-style DES network: ``(N, 4, 100, 100)`` -> lens logit ``(N,)``.

    Parameters
    ----------
    bands : int
        Input channels (4: g, r, i, z).
    size_px : int
        Input side in pixels (100 at 0.263"/px, i.e. 26.3").
    dropout : float
        Dropout probability before each dense layer.
    """

    def __init__(self, bands: int = 4, size_px: int = 100, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, side = bands, size_px
        for stage, width in enumerate(STAGE_WIDTHS):
            for _ in range(2):
                layers += [
                    nn.Conv2d(c_in, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                ]
                c_in = width
            if stage < len(STAGE_WIDTHS) - 1:
                layers.append(nn.MaxPool2d(2))
                side //= 2
        if side < 1:
            raise ValueError(f"input side {size_px} px is too small for JacobsDESNet")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c_in * side * side, DENSE),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(DENSE, DENSE),
            nn.ReLU(),
            nn.Linear(DENSE, 1),
        )

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.classifier(self.features(x)).squeeze(-1)
