"""Value types with ranges, shared by every schema (suite, learner and behaviour configs, result
files): integers are strict (``true`` is no seed, ``2.5`` no count), floats finite, and every
budget has an upper bound so that no input can make a plan allocate more than it will run."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

SEED_LIMIT = 2**32  # numpy's and torch's seeds are unsigned 32-bit

Seed = Annotated[StrictInt, Field(ge=0, lt=SEED_LIMIT)]
Width = Annotated[StrictInt, Field(ge=1, le=4096)]  # network widths, heads, layers
Interval = Annotated[StrictInt, Field(ge=1, le=10**9)]  # in updates or steps
Count = Annotated[StrictInt, Field(ge=1, le=10**7)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Rate = Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)]  # learning rates
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Discount = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]


# As files store them (manifests, summaries): strict JSON numbers, no lax conversion.
PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
StrictFinite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
StrictProbability = Annotated[float, Field(strict=True, ge=0, le=1)]


class StrictModel(BaseModel):
    """A file schema: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


def _device(value: str) -> str:
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d{1,2})?", value):
        raise ValueError(f"unknown device {value!r}; use auto, cpu, cuda or cuda:N")
    return value


Device = Annotated[str, AfterValidator(_device)]
