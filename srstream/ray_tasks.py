"""Run one function over many items as Ray tasks (`--ray [ADDRESS]` of `srstream batch` and `srmed upscale`)."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

from training.errors import SrstreamError


class RayUnavailable(SrstreamError, RuntimeError):
    """Ray is not installed, or no cluster answers at the address given; the message is one line."""


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Raise RayUnavailable (one line) unless a Ray head answers at HOST:PORT."""
    # ray.init retries an unreachable address for minutes before it gives up; a plain TCP connect says it at once.
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"--ray {address}: expected HOST:PORT of a Ray head node, 'auto' or nothing")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RayUnavailable(f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc})") from None


def connect(address: str) -> tuple[Any, bool]:
    """The `ray` module joined to the cluster at `address` ('local' starts one here, 'auto' joins the running one,
    else HOST:PORT of a head node), and whether this call started the connection (then its caller shuts it down).
    Ray's core replaces the SIGTERM handler with one that exits at once; ours (finish the outputs) is put back."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--ray needs Ray: pip install 'srstream[ray]'") from None
    if ray.is_initialized():
        return ray, False
    if address not in ("local", "auto"):
        _check_reachable(address)
    ours = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    try:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False)
    except ConnectionError as exc:
        raise RayUnavailable(f"--ray {address}: {str(exc).splitlines()[0]}") from None
    if ours is not None:
        signal.signal(signal.SIGTERM, ours)
    return ray, True


def run_as_ray_tasks(
    fn: Callable[..., Any],
    items: Sequence[Any],
    address: str,
    unit: str = "task",
    progress: bool = True,
    extra: tuple = (),
) -> list[Any]:
    """`fn(item, *extra)` for every item as Ray tasks (one CPU, or one GPU where the cluster has them), in order.

    `address` is 'local' (start Ray here), 'auto' (join the running cluster) or HOST:PORT of a head node.
    """
    ray, started_here = connect(address)
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(num_gpus=gpus, num_cpus=1)(fn)
        refs = [remote.remote(item, *extra) for item in items]
        pending = list(refs)
        with tqdm(total=len(refs), desc=f"{unit}s (ray)", unit=unit, disable=not progress) as bar:
            while pending:
                finished, pending = ray.wait(pending, num_returns=1)
                bar.update(len(finished))
        return ray.get(refs)
    finally:
        if started_here:
            ray.shutdown()
