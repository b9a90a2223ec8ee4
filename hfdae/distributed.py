"""Several processes fail together: a failure in one stops every one with the same message, never a hang.

With several processes (DDP through Accelerate), a process that raises on its own leaves the others
waiting in their next collective (an all-reduce of gradients or of the loss) for ever. So once per
training step every process meets the others at one cheap check (an all-reduce of one number): a
process whose data failed, or that has no batch at all, says so there, and every process raises
:class:`CollectiveError` with that process's message.

>>> for clean in batches_checked_together(accelerator, loader):  # each step: meet, then train
...     ...
>>> check_together(accelerator, RuntimeError("no batch"))        # this process failed: all stop
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

__all__ = ["CollectiveError", "check_together", "batches_checked_together"]


class CollectiveError(RuntimeError):
    """One process failed; every process raises this, with that process's rank and message."""


def check_together(accelerator: Any, error: BaseException | None = None) -> None:
    """A meeting point of every process: if any of them brings an error, all raise the same one.

    Every process must call it the same number of times (once per step); with one process it only
    re-raises ``error``.

    Args:
        accelerator: the run's ``accelerate.Accelerator``.
        error: what went wrong in this process, or None.

    Raises:
        CollectiveError: on every process, naming the first failing process (by rank) and its error.
    """
    if accelerator.num_processes == 1:
        if error is not None:
            raise error
        return
    failed = torch.tensor([0.0 if error is None else 1.0], device=accelerator.device)
    if float(accelerator.reduce(failed, reduction="sum").item()) == 0:
        return
    from accelerate.utils import gather_object

    messages = gather_object([None if error is None else f"{type(error).__name__}: {error}"])
    rank, message = next((rank, message) for rank, message in enumerate(messages) if message is not None)
    raise CollectiveError(
        f"process {rank} of {accelerator.num_processes} failed, so every process stopped: {message}"
    ) from error


def batches_checked_together(accelerator: Any, batches: Iterable) -> Iterator:
    """The batches of this process's loader (one epoch), each yielded after :func:`check_together`.

    A batch that cannot be loaded (an exception in the loader or its workers) is the error this process
    brings to the check, so every process stops with it. An exhausted loader yields nothing more and
    checks nothing: the caller starts the next epoch, whose first batch meets the others' next check.
    """
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except Exception as error:  # noqa: BLE001 -- every failure must reach the other processes
            check_together(accelerator, error)
            raise  # one process: check_together re-raised already; kept for clarity
        check_together(accelerator)
        yield batch
