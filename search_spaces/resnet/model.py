"""ResNet networks (He et al. 2016) laid out as torchvision's ``resnet.py`` lays them out.

A stem, four stages of basic (two KxK convolutions) or bottleneck (1x1, KxK, 1x1 with 4x
expansion) residual blocks, global pooling and a linear classifier. The first block of a
stage strides and, where its input and output differ in shape, projects its shortcut with a
1x1 convolution + BN (torchvision's ``downsample``). Inputs of 64 pixels or more get the
ImageNet stem (7x7 stride-2 convolution and 3x3 stride-2 max pooling); smaller ones a 3x3
stride-1 convolution, so 28x28 runs its stages at 28-14-7-4.
"""

from __future__ import annotations

from torch import Tensor, nn

IMAGENET_STEM_MIN_SIZE = 64
EXPANSION = {"basic": 1, "bottleneck": 4}


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    return nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out)


class Block(nn.Module):
    """A basic or bottleneck block; ``convs``/``norms`` list its branch in order, the last norm
    ends the branch (zeroed, the block is the identity: Net2DeeperNet)."""

    def __init__(self, kind: str, c_in: int, planes: int, stride: int, kernel: int) -> None:
        super().__init__()
        c_out = planes * EXPANSION[kind]
        if kind == "basic":
            layers = [conv_bn(c_in, planes, kernel, stride), conv_bn(planes, c_out, kernel)]
        else:
            layers = [conv_bn(c_in, planes, 1), conv_bn(planes, planes, kernel, stride), conv_bn(planes, c_out, 1)]
        self.convs = nn.ModuleList(conv for conv, _ in layers)
        self.norms = nn.ModuleList(norm for _, norm in layers)
        self.downsample = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                           if stride != 1 or c_in != c_out else None)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            out = norm(conv(out))
            if i < len(self.convs) - 1:
                out = self.relu(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    def __init__(self, stem: nn.Sequential, stages: list[nn.Sequential], width: int, num_classes: int) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.classifier(self.pool(x).flatten(1))


def build_resnet(kind: str, stem_width: int, kernel: int, depths: list[int], widths: list[int],
                 in_shape: tuple[int, int, int], num_classes: int) -> ResNet:
    channels, height, width = in_shape
    if min(height, width) >= IMAGENET_STEM_MIN_SIZE:
        conv, norm = nn.Conv2d(channels, stem_width, 7, 2, 3, bias=False), nn.BatchNorm2d(stem_width)
        stem = nn.Sequential(conv, norm, nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
    else:
        conv, norm = conv_bn(channels, stem_width, 3)
        stem = nn.Sequential(conv, norm, nn.ReLU(inplace=True))
    c_in, stages = stem_width, []
    for s, (depth, planes) in enumerate(zip(depths, widths)):
        blocks = []
        for b in range(depth):
            blocks.append(Block(kind, c_in, planes, 2 if s > 0 and b == 0 else 1, kernel))
            c_in = planes * EXPANSION[kind]
        stages.append(nn.Sequential(*blocks))
    model = ResNet(stem, stages, c_in, num_classes)
    for module in model.modules():  # torchvision's initialisation
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model
