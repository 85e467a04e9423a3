"""A real Ray cluster on 127.0.0.1 for the tests and benchmarks: a head node and a second node, each a `ray start`
of its own (the second in a session of its own, so that killing it takes its raylet and workers down at once, as a
machine that dies would)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import free_port

RAY = str(Path(sys.executable).parent / "ray")


def ray_available() -> bool:
    return Path(RAY).exists() or shutil.which("ray") is not None


class RayCluster:
    """`ray start --head` plus one more node, one CPU each; `kill_node()` kills the second node outright."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.node: subprocess.Popen | None = None
        # A throwaway cluster on 127.0.0.1: no token (Ray 2.59+ turns tokens on for local clusters, and then the
        # second node and `ray status` would need the head's); every process of the test gets this environment.
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RayCluster:
        subprocess.run([RAY, "start", "--head", f"--port={self.port}", "--node-ip-address=127.0.0.1",
                        "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"], check=True,
                       env=self.env, capture_output=True, timeout=180)
        self.node = subprocess.Popen([RAY, "start", f"--address={self.address}", "--node-ip-address=127.0.0.1",
                                      "--num-cpus=1", "--block", "--disable-usage-stats"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.alive_nodes() < 2:
            time.sleep(1)
        assert self.alive_nodes() == 2, "the second Ray node did not join"
        return self

    def alive_nodes(self) -> int:
        out = subprocess.run([RAY, "status", f"--address={self.address}"], env=self.env, capture_output=True,
                             text=True, timeout=60).stdout
        return sum(1 for line in out.splitlines() if line.strip().startswith("1 node_"))

    def kill_node(self) -> None:
        """The second node dies: its `ray start`, raylet and workers, all at once."""
        os.killpg(self.node.pid, signal.SIGKILL)
        self.node.wait(timeout=30)

    def stop(self) -> None:
        if self.node is not None and self.node.poll() is None:
            self.kill_node()
        subprocess.run([RAY, "stop", "--force"], env=self.env, capture_output=True, timeout=120)
