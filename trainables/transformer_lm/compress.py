"""The model after int8 dynamic quantisation and after global magnitude pruning, evaluated.

Both use torch's own tools (``torch.ao.quantization.quantize_dynamic``,
``torch.nn.utils.prune.global_unstructured``) on a plain copy of the trained weights, in
one process: dynamic quantisation runs on the CPU only, so the quantised model is measured
there; the pruned one on the training device.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from trainables.transformer_lm.evaluate import Batch, evaluate, latency_ms
from trainables.transformer_lm.hparams import LmHyperparams
from trainables.transformer_lm.model import TransformerLM
from trainables.transformer_lm.parallel import Topology

_LONE = Topology(0, 1, 0, 1, 0, 1, None)


def plain_model(hp: LmHyperparams, state: Mapping[str, torch.Tensor]) -> TransformerLM:
    model = TransformerLM(hp)
    model.load_state_dict(dict(state))
    return model.eval()


def size_mb(model: nn.Module) -> float:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6


def compressed_metrics(
    hp: LmHyperparams,
    state: Mapping[str, torch.Tensor],
    batches: Sequence[Batch],
    device: torch.device,
) -> dict[str, float]:
    """``quant_val_loss``, ``quant_latency_ms``, ``quant_size_mb`` and ``pruned_val_loss``."""
    from torch.ao.quantization import quantize_dynamic

    cpu = torch.device("cpu")
    quantized = quantize_dynamic(plain_model(hp, state), {nn.Linear}, dtype=torch.qint8)
    quant = evaluate(quantized, batches, _LONE, cpu, hp.vocab_size)

    pruned = plain_model(hp, state).to(device)
    linears = [(m, "weight") for m in pruned.modules() if isinstance(m, nn.Linear)]
    prune.global_unstructured(linears, pruning_method=prune.L1Unstructured, amount=hp.prune_amount)
    for module, name in linears:
        prune.remove(module, name)  # make the zeros permanent
    pruned_metrics = evaluate(pruned, batches, _LONE, device, hp.vocab_size)
    return {
        "quant_val_loss": quant["val_loss"],
        "quant_latency_ms": latency_ms(quantized, hp.seq_len, cpu),
        "quant_size_mb": size_mb(quantized),
        "pruned_val_loss": pruned_metrics["val_loss"],
    }
