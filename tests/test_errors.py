"""One error root: every error srstream raises on purpose is a `SrstreamError` and also the built-in it is a kind
of, so a CLI catches one type while code that catches ValueError, RuntimeError or OSError keeps working."""
import importlib
import inspect
import pkgutil

import pytest

from training.errors import SrstreamError

PACKAGES = ("training", "srstream", "medical")
PRIVATE = {"_StreamEnded"}  # control flow inside the decoder thread, never shown to a user


def _error_classes():
    found = {}
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            try:
                module = importlib.import_module(info.name)
            except ImportError:  # an optional extra (ray, tensorrt, gradio) not installed
                continue
            for cls_name, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == info.name and cls is not SrstreamError \
                        and cls_name not in PRIVATE:
                    found[f"{info.name}.{cls_name}"] = cls
    return found


ERRORS = _error_classes()


def test_the_errors_are_found():
    assert {"medical.volume.VolumeError", "srstream.errors.EngineError", "training.weights.ModelLoadError",
            "medical.node.rules.RulesError", "srstream.video.source.VideoInputError"} <= set(ERRORS)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_every_error_has_the_one_root_and_a_builtin(name):
    cls = ERRORS[name]
    assert issubclass(cls, SrstreamError), name
    assert issubclass(cls, (ValueError, RuntimeError, OSError)), name
