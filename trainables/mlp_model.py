"""The network and optimizer of the ``mlp_digits`` trainable."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from trainables.mlp_hparams import MlpHyperparams


def build_mlp(hp: MlpHyperparams, in_features: int, classes: int) -> nn.Module:
    blocks: list[nn.Module] = []
    width = in_features
    for _ in range(hp.layers):
        blocks += [nn.Linear(width, hp.hidden), nn.ReLU(), nn.Dropout(hp.dropout)]
        width = hp.hidden
    blocks.append(nn.Linear(width, classes))
    return nn.Sequential(*blocks)


def build_optimizer(
    hp: MlpHyperparams, parameters: Iterable[nn.Parameter]
) -> torch.optim.Optimizer:
    if hp.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
        )
    return torch.optim.Adam(
        parameters, lr=hp.lr, betas=(hp.beta1, 0.999), weight_decay=hp.weight_decay
    )
