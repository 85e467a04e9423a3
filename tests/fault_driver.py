"""Runs front-door commands in this one process, each under a time limit, and reports how each ended, as JSON.

    python tests/fault_driver.py CASES.json  ->  prints {name: {"rc", "stderr", "crashed", "seconds"}}

CASES.json is a list of {"name", "door" ("srstream" or "srmed"), "argv"}. Running them in one process keeps the
corpus fast (torch is imported once); fd 2 is captured per case, so FFmpeg's own messages are seen too. A case that
raises out of `main` is a crash (a user would see a traceback); one past its time limit is a hang.
"""
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

LIMIT_S = 90


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def run(case: dict) -> dict:
    if case["door"] == "srstream":
        from srstream.cli import main
    else:
        from medical.cli import main
    with tempfile.TemporaryFile() as err:
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        crashed, rc, started = None, None, time.monotonic()
        signal.alarm(LIMIT_S)
        try:
            rc = main(case["argv"])
        except Hang:
            crashed = f"hang: still running after {LIMIT_S} s"
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - a crash of any kind is what this driver reports
            crashed = traceback.format_exc()
        finally:
            signal.alarm(0)
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        text = err.read().decode(errors="replace")
    return {"rc": rc, "stderr": text, "crashed": crashed, "seconds": round(time.monotonic() - started, 2)}


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, _alarm)
    cases = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps({case["name"]: run(case) for case in cases}))
