"""``transformer_lm``: a decoder-only byte-level LM, every knob of the tuning playbook a parameter.

Trained by Ray Train workers: ``resources.num_workers`` data-parallel replicas of
``resources.tensor_parallel`` workers each (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

from typing import Any

from search_spaces import load_preset_document
from trainables.registry import TrainableSpec, TrialResources, register
from trainables.transformer_lm.validate import validate_candidates, validate_config

PRESET = "transformer_playbook"
EVERY_EVALUATION = (
    "train_loss", "val_loss", "val_ppl", "val_accuracy", "val_f1", "grad_norm",
    "update_ratio", "lr", "tokens_per_s", "step_time_s", "peak_mem_mb", "mfu", "latency_ms",
    "params", "evaluation", "step", "pbt_exploits", "train_time_s",
)  # fmt: skip
# What PBT may change in a trial that continues another's weights: not the model's shape.
PBT_MUTABLE = frozenset(
    {"lr", "weight_decay", "beta1", "beta2", "dropout", "token_dropout", "grad_clip",
     "grad_accum_steps", "min_lr_ratio", "prune_amount"}
)  # fmt: skip
AT_THE_END = ("quant_val_loss", "quant_latency_ms", "quant_size_mb", "pruned_val_loss")


def run(config: dict[str, Any], resources: TrialResources) -> None:
    # torch and Ray Train load only in trial processes, not wherever the registry is read.
    from ray import tune

    from trainables.train_in_tune import fit_in_tune
    from trainables.transformer_lm.corpus import load_corpus
    from trainables.transformer_lm.hparams import LmHyperparams
    from trainables.transformer_lm.ray_worker import train_loop_per_worker

    hp = LmHyperparams.from_config(config)
    load_corpus(hp.corpus_bytes)  # built once here, read from the cache by the workers
    loop_config = {
        "hparams": hp.as_dict(),
        "tensor_parallel": resources.tensor_parallel,
        "cpus_per_worker": resources.cpus_per_worker,
        "trial_id": tune.get_context().get_trial_id(),
    }
    fit_in_tune(train_loop_per_worker, loop_config, resources)


_preset = load_preset_document(PRESET)

SPEC = register(
    TrainableSpec(
        name="transformer_lm",
        description=(
            "Decoder-only transformer LM on the bytes of the Python standard library's "
            "source (no download), trained by Ray Train workers with DDP and optional "
            "tensor parallelism (resources.tensor_parallel). Searchable: depth/width, "
            "attention full|window|low_rank, pre/post LayerNorm|RMSNorm, AdamW lr, "
            "schedule, weight decay, dropout, token dropout, grad accumulation, precision. "
            "Reports loss, perplexity, accuracy, F1, throughput, MFU, memory and latency "
            "each evaluation; int8-quantised and pruned evaluations at the end."
        ),
        metrics=EVERY_EVALUATION,
        final_metrics=AT_THE_END,
        default_metric="val_loss",
        default_mode="min",
        default_search_space=_preset["search_space"],
        default_config={**_preset.get("config", {}), "seed": 0},
        fidelity_key="evals",
        uses_train_workers=True,
        supports_tensor_parallel=True,
        pbt_mutable=PBT_MUTABLE,
        fn=run,
        validate=validate_config,
        validate_candidates=validate_candidates,
    )
)
