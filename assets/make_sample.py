"""Make assets/sample.mp4: an excerpt of Big Buck Bunny, 640x360, H.264 + AAC stereo.

Usage: python assets/make_sample.py OUT.mp4 [SOURCE.mp4]
(SOURCE defaults to ../shared/data/video/bigbuckbunny_720p25_audio.mp4)
"""

from __future__ import annotations

import sys
from fractions import Fraction

import av

FPS = 25


def main(argv: list[str]) -> int:
    dst = argv[0]
    src = argv[1] if len(argv) > 1 else "../shared/data/video/bigbuckbunny_720p25_audio.mp4"
    with av.open(src) as inp, av.open(dst, "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream("libx264", rate=FPS)
        vout.width, vout.height, vout.pix_fmt = 640, 360, "yuv420p"
        vout.options = {"crf": "27", "preset": "slow"}
        vout.time_base = Fraction(1, FPS)
        aout = out.add_stream("aac", rate=48000)
        aout.layout = "stereo"
        aout.bit_rate = 64000
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        n = 0
        for pkt in inp.demux(vin, ain):
            for frame in pkt.decode():
                if pkt.stream.type == "video":
                    small = frame.reformat(width=640, height=360, format="yuv420p")
                    small.pts, small.time_base = n, Fraction(1, FPS)
                    n += 1
                    out.mux(vout.encode(small))
                else:
                    for rf in resampler.resample(frame):
                        rf.pts = None
                        out.mux(aout.encode(rf))
        out.mux(vout.encode(None))
        for rf in resampler.resample(None):
            out.mux(aout.encode(rf))
        out.mux(aout.encode(None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
