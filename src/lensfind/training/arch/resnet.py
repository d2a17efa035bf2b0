"""ResNet18 for one band (van Lohuizen 2021 sec. 4.3; Petrillo et al. 2019).

The standard ResNet18 of He et al. 2016 (7x7 stride-2 stem, 3x3 stride-2 max
pool, four stages of two basic blocks with 64, 128, 256, 512 channels, global
average pool) with a one-band input and a single output, whose sigmoid is the
lens probability (vL: "one neuron with a sigmoid activation"; the sigmoid is
left to the loss and the scorer). Module names follow torchvision's ``resnet18``
(``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``), but
each block owns two ReLU modules (torchvision reuses one, in place) so that
hook-based saliency sees every activation. Global average pooling makes it
accept any input side; 101x101 KiDS r-band cutouts give 0.87 GFLOP.

``resnet_small_1band`` is the same network (same stem, four stages of two basic
blocks, global average pool, one output) at one eighth of the width: 8, 16, 32,
64 channels (0.18 M parameters instead of 11.2 M, about 60x fewer FLOPs), for
loss-function studies that must run on a CPU in minutes.
"""

from lensfind.training._torch import nn, torch


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(c_out),
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(y + shortcut)


class ResNet18(nn.Module):
    """ResNet18 mapping ``(N, bands, H, W)`` cutouts to one lens logit ``(N,)``.

    Parameters
    ----------
    bands : int
        Input channels (1: KiDS r band in van Lohuizen 2021).
    widths : tuple of 4 int
        Channels of the four stages (the stem has ``widths[0]``); ResNet18's
        are 64, 128, 256, 512.
    """

    def __init__(self, bands: int = 1, widths: tuple[int, int, int, int] = (64, 128, 256, 512)):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.conv1 = nn.Conv2d(bands, w1, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w1)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(w1, w1, stride=1)
        self.layer2 = self._stage(w1, w2, stride=2)
        self.layer3 = self._stage(w2, w3, stride=2)
        self.layer4 = self._stage(w3, w4, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w4, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1))

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1)).squeeze(-1)


#: Stage widths of ``resnet_small_1band`` (ResNet18's divided by 8).
SMALL_WIDTHS = (8, 16, 32, 64)
