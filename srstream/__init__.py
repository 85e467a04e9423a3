"""srstream: the one inference engine (model loading, backends, tiling, batching) and the video front door."""
