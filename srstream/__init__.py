"""srstream: the one inference engine (model loading, backends, tiling, batching) and the video front door."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("srstream")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
