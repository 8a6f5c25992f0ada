"""The hyperparameters of ``transformer_lm`` with their defaults (no torch import: cheap)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

ATTENTIONS = ("full", "window", "low_rank")
NORMS = ("pre", "post")
NORM_TYPES = ("layernorm", "rmsnorm")
SCHEDULES = ("constant", "warmup_cosine", "cosine_restarts")
PRECISIONS = ("fp32", "bf16", "fp16")
BYTE_VOCAB = 256


@dataclass(frozen=True)
class LmHyperparams:
    """Everything a worker needs; keys absent from a trial's config take these defaults.

    The defaults are the tiny CPU model of the playbook preset: a few minutes a study on
    two cores.
    """

    # model: depth vs width, attention variant, normalisation
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.0
    norm: str = "pre"  # "pre" | "post": where each block's normalisation stands
    norm_type: str = "layernorm"  # "layernorm" | "rmsnorm"
    attention: str = "full"  # "full" | "window" | "low_rank"
    window_size: int = 32  # attention == "window": tokens each position sees (itself included)
    rank: int = 16  # attention == "low_rank": width of the shared key/value latent
    vocab_size: int = BYTE_VOCAB  # byte tokens use ids < 256; larger pads the embedding
    # optimisation
    lr: float = 3e-3
    weight_decay: float = 0.01  # AdamW's decoupled decay (not an L2 term in the loss)
    beta1: float = 0.9
    beta2: float = 0.95
    schedule: str = "warmup_cosine"
    warmup_steps: int = 10
    T_0: int = 20  # cosine_restarts: steps of the first cycle  # noqa: N815
    T_mult: int = 1  # cosine_restarts: cycle growth factor  # noqa: N815
    min_lr_ratio: float = 0.1  # cosine floor as a fraction of lr
    grad_clip: float = 1.0  # max global grad norm; 0 turns clipping off
    grad_accum_steps: int = 1
    precision: str = "fp32"  # "fp32" | "bf16" | "fp16" (fp16 needs a GPU)
    token_dropout: float = 0.0  # share of input bytes replaced by random bytes (augmentation)
    # data and budget
    seq_len: int = 64
    batch_size: int = 16  # sequences per data-parallel rank per micro-step
    evals: int = 9  # evaluations (= Tune iterations): the fidelity budget
    steps_per_eval: int = 10  # optimizer steps between evaluations
    eval_batches: int = 4  # validation effective batches per evaluation (split over ranks)
    corpus_bytes: int = 4_000_000  # cap on the corpus read from the standard library
    # end of training: compression
    prune_amount: float = 0.3  # global L1 unstructured pruning of the linear weights
    compress_eval: bool = True  # run the quantised and pruned evaluations at the end
    # speed knobs (GPU)
    compile: bool = False  # torch.compile the model
    fused_adamw: bool = True  # fused AdamW kernel where the device supports it
    checkpoint_every: int = 1  # evaluations between checkpoints (0: only at the end)
    seed: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LmHyperparams:
        values: dict[str, Any] = {}
        for field in fields(cls):
            value = config.get(field.name)
            if value is None:
                continue
            default = getattr(cls, field.name)
            values[field.name] = bool(value) if isinstance(default, bool) else type(default)(value)
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def hidden(self) -> int:
        """Width of the MLP's hidden layer."""
        return self.mlp_ratio * self.d_model

    @property
    def val_batches(self) -> int:
        """Validation batches of ``batch_size`` per evaluation: ``eval_batches`` effective
        batches. Trading batch size for gradient accumulation (a playbook comparison) then
        validates on the same sequences, in batches no larger than training's."""
        return self.eval_batches * self.grad_accum_steps

    @property
    def tokens_per_step(self) -> int:
        """Tokens one data-parallel rank processes per optimizer step."""
        return self.batch_size * self.seq_len * self.grad_accum_steps
