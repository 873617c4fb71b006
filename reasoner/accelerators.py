"""Accelerator profiles: how fast a chip multiplies matrices and moves memory.

The cost model (`reasoner.cost`) folds memory traffic into compute with one constant per
chip, its arithmetic intensity `matmul_flops / memory_bandwidth` (FLOP per byte, the ridge
of its roofline): a byte moved costs what that many FLOPs cost. The table is small and
user-extendable: `register_accelerator(Accelerator(name=..., matmul_flops=..., memory_bandwidth=...))`.

Figures are dense (no 2:4 sparsity) bf16 tensor-core throughput and device memory bandwidth:
- H200: measured on this project's lent H200 (issue 25): about 790 TFLOP/s bf16 matmul and
  4.3 TB/s; NVIDIA's datasheet says 989 TFLOP/s and 4.8 TB/s
  (https://www.nvidia.com/en-us/data-center/h200/).
- H100 SXM: 989 TFLOP/s bf16, 3.35 TB/s HBM3 (https://www.nvidia.com/en-us/data-center/h100/).
- A100 SXM 80GB: 312 TFLOP/s bf16, 2.039 TB/s HBM2e (https://www.nvidia.com/en-us/data-center/a100/).
- L40S: 362 TFLOP/s bf16, 864 GB/s GDDR6 (https://www.nvidia.com/en-us/data-center/l40s/).
- B200: 2.25 PFLOP/s bf16, 8 TB/s HBM3e (NVIDIA DGX B200 datasheet, per GPU).
- cpu: an order of magnitude for one many-core server socket with AVX-512 bf16, about
  1 TFLOP/s sustained matmul and 100 GB/s DDR5 sustained (8 channels of DDR5-4800 peak at
  307 GB/s); measure your own machine and register it for a figure worth quoting.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reasoner.errors import CostError

DEFAULT_ACCELERATOR = "H200"


class Accelerator(BaseModel):
    """One chip's matmul throughput and memory bandwidth; `intensity` is their ratio."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="The name the cost model and the CLI's --accelerator use.")
    matmul_flops: float = Field(gt=0, allow_inf_nan=False, description="Dense bf16 matrix FLOP per second.")
    memory_bandwidth: float = Field(gt=0, allow_inf_nan=False, description="Device memory bytes per second.")
    source: str = Field(default="", description="Where the figures come from.")

    def __init__(self, **data: object) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "accelerator"
            raise CostError(f"invalid accelerator {field}={error.get('input')!r}: {error['msg']}") from None

    @property
    def intensity(self) -> float:
        """FLOPs one byte of memory traffic is worth on this chip (its roofline's ridge point)."""
        return self.matmul_flops / self.memory_bandwidth

    def seconds(self, eflops: float) -> float:
        """The time `eflops` equivalent FLOPs take on one chip at full matmul throughput."""
        return eflops / self.matmul_flops


_ACCELERATORS: dict[str, Accelerator] = {}


def register_accelerator(accelerator: Accelerator) -> Accelerator:
    """Add (or replace) an accelerator profile, found after by its name, any case."""
    _ACCELERATORS[accelerator.name.lower()] = accelerator
    return accelerator


def get_accelerator(name: str | Accelerator) -> Accelerator:
    """The profile named `name` (any case); a `CostError` naming the known ones otherwise."""
    if isinstance(name, Accelerator):
        return name
    found = _ACCELERATORS.get(name.lower()) if isinstance(name, str) else None
    if found is None:
        raise CostError(
            f"unknown accelerator {name!r}; known: {', '.join(accelerator_names())} "
            "(add one with reasoner.accelerators.register_accelerator)"
        )
    return found


def accelerator_names() -> list[str]:
    """The names of every registered accelerator profile."""
    return [accelerator.name for accelerator in _ACCELERATORS.values()]


for _profile in (
    Accelerator(name="H200", matmul_flops=790e12, memory_bandwidth=4.3e12, source="measured, issue 25"),
    Accelerator(name="H100", matmul_flops=989e12, memory_bandwidth=3.35e12, source="NVIDIA H100 SXM datasheet"),
    Accelerator(name="A100", matmul_flops=312e12, memory_bandwidth=2.039e12, source="NVIDIA A100 80GB SXM datasheet"),
    Accelerator(name="L40S", matmul_flops=362e12, memory_bandwidth=0.864e12, source="NVIDIA L40S datasheet"),
    Accelerator(name="B200", matmul_flops=2.25e15, memory_bandwidth=8e12, source="NVIDIA DGX B200 datasheet"),
    Accelerator(name="cpu", matmul_flops=1e12, memory_bandwidth=100e9, source="order of magnitude, one server socket"),
):
    register_accelerator(_profile)
