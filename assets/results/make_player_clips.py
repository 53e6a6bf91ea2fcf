"""Re-encode the shared Big Buck Bunny clip at 854x480 and 1280x720 (H.264, 25 fps, no audio)
for the player's fps figures in README.md.

Usage: python assets/results/make_player_clips.py SOURCE.mp4 OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import av


def main(source: str, out_dir: str) -> None:
    for h, w in ((480, 854), (720, 1280)):
        path = Path(out_dir) / f"bbb{h}.mp4"
        with av.open(source) as src, av.open(str(path), "w") as out:
            vs = out.add_stream("libx264", rate=25)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            for frame in src.decode(video=0):
                for pkt in vs.encode(frame.reformat(width=w, height=h, format="yuv420p")):
                    out.mux(pkt)
            for pkt in vs.encode():
                out.mux(pkt)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
