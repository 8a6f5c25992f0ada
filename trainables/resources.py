"""What Tune should reserve for one trial of a trainable, and what its Train workers take."""

from __future__ import annotations

from trainables.registry import TrainableSpec, TrialResources

# A trial that runs Ray Train only coordinates: its workers reserve their own CPUs/GPUs
# when its TorchTrainer starts, and Tune cannot see them. It must not reserve a CPU, not
# even a fraction: on a 4-CPU node two 2-worker trials plus 2 x 0.01 CPU for their
# drivers exceed 4 CPUs, and the second trial's workers wait forever. Tune refuses an
# all-zero request ("empty head and zero worker bundles"), so the driver asks for a
# little memory, which it does use, and no CPU.
TRAIN_DRIVER_MEMORY_BYTES = 256 * 1024**2


def trial_resources(spec: TrainableSpec, resources: TrialResources) -> dict[str, float]:
    """The request for ``ray.tune.with_resources`` (keys ``cpu``, ``gpu``, ``memory``)."""
    if spec.uses_train_workers:
        return {"cpu": 0, "memory": TRAIN_DRIVER_MEMORY_BYTES}
    request: dict[str, float] = {"cpu": resources.cpus_per_worker}
    if resources.use_gpu:
        request["gpu"] = 1
    return request


def worker_demand(spec: TrainableSpec, resources: TrialResources) -> dict[str, float]:
    """CPUs and GPUs one running trial holds in all (to cap ``max_concurrent_trials``)."""
    if not spec.uses_train_workers:
        return {"CPU": resources.cpus_per_worker, "GPU": 1.0 if resources.use_gpu else 0.0}
    return {
        "CPU": resources.total_workers * resources.cpus_per_worker,
        "GPU": float(resources.total_workers) if resources.use_gpu else 0.0,
    }
