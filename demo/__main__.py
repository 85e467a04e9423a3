"""`python -m demo [--host 127.0.0.1] [--port 7860] [--backend auto]`: serve the Gradio page."""

from __future__ import annotations

import argparse
import sys

from srstream.backends import NAMES


def main(argv: list[str] | None = None) -> int:
    """Serve the page until stopped; 1 with one line when Gradio (the demo extra) is not installed."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--backend", default="auto", choices=NAMES)
    parser.add_argument("--video-limit", type=float, default=20.0, help="longest clip accepted, in seconds")
    parser.add_argument("--max-file-size", default="200mb", help="largest upload accepted")
    args = parser.parse_args(argv)
    try:
        from demo.app import PageConfig, build
    except ModuleNotFoundError as exc:
        if exc.name not in ("gradio", "gradio_client"):
            raise
        print(f"python -m demo: error: {exc.name} is missing: pip install 'srstream[demo]'", file=sys.stderr)
        return 1
    settings = PageConfig(backend=args.backend, video_limit_s=args.video_limit, max_file_size=args.max_file_size)
    build(settings).launch(
        server_name=args.host, server_port=args.port, max_file_size=args.max_file_size, show_error=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
