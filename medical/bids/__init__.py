"""BIDS datasets in and a BIDS derivatives dataset out, through srmed's own per-volume run (`medical.run`).

`dataset` finds and selects the anatomical images of a BIDS dataset (pybids) and reads their sidecars;
`derivatives` names the outputs and writes the derivatives dataset's description and sidecars; `app` is the
`srmed bids BIDS_DIR OUTPUT_DIR participant` subcommand that joins them.
"""
