"""The house's rules, checked on the source tree itself: every source module is imported by some test module; no
argparse.Namespace below the command-line modules; each default of the video front door written once; the
architectures listed only in their registry; every error class under SrstreamError (tests/test_errors.py)."""

import ast
import re
from pathlib import Path

from assets import ROOT

PACKAGES = ("training", "srstream", "medical", "demo")
# Modules that are programs, not libraries: run as `python -m`, tested through their command lines.
PROGRAMS = {"demo.__main__", "medical.cli", "srstream.cli"}
# Internals of a long-running service, tested end to end through the real program (signals, systemd, a PACS, a
# Ray cluster) by the test file named here rather than imported by a unit test.
END_TO_END = {
    "srstream.site.camera": "test_site.py", "srstream.site.commands": "test_site.py",
    "srstream.site.server": "test_site.py", "srstream.site.original": "test_site.py",
    "srstream.site.recovery": "test_site.py", "srstream.site.ray_placement": "test_site.py",
    "srstream.video.publisher": "test_site.py", "medical.bids.app": "test_bids.py",
    "medical.node.command": "test_pacs_node.py",
}
# The modules where argparse lives: each builds its front door's typed request from the parsed flags.
CLI_MODULES = {
    "srstream.cli", "srstream.commands", "srstream.video.commands", "srstream.site.commands",
    "srstream.export_command", "srstream.tune_command", "medical.cli", "medical.commands", "medical.job",
    "medical.node.command", "medical.bids.app", "medical.slices", "training.train", "training.evaluate",
    "training.qp_estimator", "demo.screenshots", "demo.__main__",
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imported_by_tests() -> set[str]:
    names = set()
    for path in (ROOT / "tests").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_every_source_module_is_imported_by_some_test():
    imported = _imported_by_tests()
    missing = [m for m, path in _modules().items() if path.name != "__init__.py" and m not in PROGRAMS
               and m not in imported and m not in END_TO_END]
    assert not missing, f"source modules no test imports: {missing}"
    for module, test in END_TO_END.items():  # each named test runs the program that module belongs to
        command = "bids" if "bids" in module else "serve"
        assert module in _modules() and command in (ROOT / "tests" / test).read_text(), (module, test)


def test_no_argparse_namespace_below_the_command_line_modules():
    below = [m for m, path in _modules().items() if m not in CLI_MODULES and re.search(r"\bNamespace\b",
                                                                                          path.read_text())]
    assert not below, f"argparse.Namespace used outside the CLI modules: {below}"


def test_each_video_default_is_written_once():
    """The defaults live on Settings / EncodeOptions (srstream/video/settings.py) and the engine's BATCH; the CLI,
    the pipeline and the site read them from there."""
    video = [p for m, p in _modules().items() if m.startswith(("srstream.video", "srstream.site"))
             or m in ("srstream.commands", "srstream.engine")]
    literal = re.compile(r"(retries|timeout_s|max_latency|batch|batch_size|crf|preset)\s*(:\s*\w+\s*)?=\s*"
                         r"(5|10\.0|2\.0|4|18|\"medium\")\b|default=(5|10\.0|2\.0|4|18|\"medium\")\b|Fraction\(25\)")
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in video for n, line in enumerate(p.read_text().splitlines(), 1)
            if literal.search(line) and p.name != "settings.py" and not line.lstrip().startswith("BATCH =")]
    assert not hits, f"a video default written outside srstream/video/settings.py: {hits}"


def test_architectures_are_named_only_in_their_registry():
    """Only training/architectures/ knows the generator classes; the rest asks its registry."""
    classes = re.compile(r"\b(SRResNet|FastSR|RecurrentSR)\b")
    allowed = ("training.architectures", "training.train", "srstream.inference_graph")
    users = [m for m, p in _modules().items() if not m.startswith(allowed) and classes.search(p.read_text())]
    assert not users, f"generator classes named outside training/architectures: {users}"


def test_every_benchmark_script_imports():
    """The scripts under benchmarks/ are run by hand or on a lent GPU, never by a test: one import each (their
    `main` behind `__name__`) catches a module renamed under them, as engine.py -> engine_throughput.py once broke
    gpu_streaming.py unnoticed."""
    import subprocess
    import sys

    scripts = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py"))
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run([sys.executable, "-c", code, *scripts], cwd=ROOT / "benchmarks", capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
