"""Video input and output with PyAV: decoding in a thread, encoding with stream copy.

- :class:`Frame`: one picture, ``rgb`` (H, W, 3) uint8 RGB and ``pts`` (``fractions.Fraction``
  seconds on the source's own timeline, exact), plus where it came from.
- :func:`probe`: the facts about a file's first video stream (:class:`VideoInfo`), with a clear
  :class:`VideoError` for a missing, corrupt or truncated file or one without video.
- :class:`Decoder`: decodes the first video stream into :class:`Frame` objects in its own thread
  (bounded queue), or synchronously with :meth:`Decoder.frames`; ``seek(pts)`` from any thread.
  10-bit (and other high bit depth) input is converted to 8-bit RGB by swscale with the stream's
  own colour matrix (BT.709 when untagged and at least 720 lines, BT.601 below).
- :class:`Encoder`: writes frames with a video codec (H.264 yuv420p by default) and copies every
  audio, subtitle and data stream of a template input untouched, interleaved by time so they stay
  in sync. It writes to a temporary name beside the output and renames it only in
  :meth:`Encoder.close`; :meth:`Encoder.abort` (or leaving its ``with`` block by an exception,
  Ctrl-C included) removes the temporary file, so no half-written output is ever left behind.

No torch here.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

__all__ = ["VideoError", "Frame", "VideoInfo", "probe", "Decoder", "Encoder", "EncodeOptions",
           "temp_name", "check_output", "to_rgb", "X264_PRESETS"]

log = logging.getLogger(__name__)

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")
"""Presets of libx264 and libx265 (checked before the encoder opens)."""

_SWS_709, _SWS_601, _SWS_2020 = 1, 5, 9  # swscale colour matrices (same numbers as AVColorSpace)


class VideoError(RuntimeError):
    """A video file that cannot be read or written, with a one-line message for the user."""


@dataclass
class Frame:
    """One video frame on its way through the pipeline.

    Attributes:
        rgb: (H, W, 3) uint8 RGB, C-contiguous.
        pts: presentation time in seconds (exact rational, the source's timeline).
        index: index of the source frame it is (or was generated after), from 0.
        kind: "source" (decoded, unchanged), "generated" (interpolated), or "repeat" (a copy of
            a source frame: at a scene cut or after the last source frame).
        t: the timestep in (0, 1) between source frames ``index`` and ``index + 1`` for
            generated and repeated frames, 0 for source frames.
        epoch: the seek generation it belongs to (frames of an older epoch are stale).
    """

    rgb: np.ndarray
    pts: Fraction
    index: int = 0
    kind: str = "source"
    t: Fraction = field(default_factory=Fraction)
    epoch: int = 0


@dataclass(frozen=True)
class VideoInfo:
    """Facts about the first video stream of a file.

    Attributes:
        path: the file.
        width, height: frame size in pixels.
        fps: the average frame rate (frames per second, exact), the stream's guess when the
            container does not state it.
        time_base: the stream's time base (seconds per tick).
        start: pts of the first frame in seconds (0 when unknown).
        duration: the video stream's duration in seconds (None when unknown).
        frames: number of frames as the container states it (0 when unknown).
        pix_fmt: pixel format of the decoded frames, e.g. "yuv420p" or "yuv420p10le".
        codec: the video codec's name.
        other_streams: (index, type, codec name) of every non-video stream (audio, subtitle,
            data, attachment).
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    start: Fraction
    duration: Fraction | None
    frames: int
    pix_fmt: str
    codec: str
    other_streams: tuple[tuple[int, str, str], ...]


def _av() -> Any:
    import av

    return av


def _open_input(path: str | Path) -> Any:
    """Open a media file for reading, with a one-line error for every way it can fail."""
    av = _av()
    p = Path(path)
    if not p.exists():
        raise VideoError(f"input not found: {p}")
    if not p.is_file():
        raise VideoError(f"input is not a file: {p}")
    try:
        return av.open(str(p), "r")
    except av.error.FFmpegError as exc:
        raise VideoError(f"cannot read {p}: not a video file, or corrupt or truncated "
                         f"({exc.strerror or exc})") from None
    except OSError as exc:
        raise VideoError(f"cannot read {p}: {exc.strerror or exc}") from None


def _video_stream(container: Any, path: Path) -> Any:
    streams = [s for s in container.streams.video
               if not (s.disposition and "attached_pic" in str(s.disposition))]
    if not streams:
        raise VideoError(f"{path} has no video stream")
    return streams[0]


def _rate(stream: Any) -> Fraction:
    for r in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if r is not None and r > 0:
            return Fraction(r.numerator, r.denominator)
    return Fraction(25)


def probe(path: str | Path) -> VideoInfo:
    """Read the facts about ``path``'s first video stream.

    Raises:
        VideoError: missing, unreadable, corrupt or truncated file, no video stream.
    """
    p = Path(path)
    container = _open_input(p)
    try:
        vs = _video_stream(container, p)
        cc = vs.codec_context
        tb = Fraction(vs.time_base.numerator, vs.time_base.denominator) if vs.time_base \
            else Fraction(1, 90000)
        start = Fraction(vs.start_time) * tb if vs.start_time is not None else Fraction(0)
        duration = Fraction(vs.duration) * tb if vs.duration else None
        if duration is None and container.duration:
            duration = Fraction(container.duration, 1_000_000)
        others = tuple((s.index, s.type, s.codec_context.name if s.codec_context else "?")
                       for s in container.streams if s.index != vs.index)
        width, height = int(cc.width), int(cc.height)
        if width < 1 or height < 1:
            raise VideoError(f"{p}: the video stream has no frame size (corrupt or truncated)")
        return VideoInfo(p, width, height, _rate(vs), tb, start, duration, int(vs.frames or 0),
                         str(cc.format.name) if cc.format else "?", str(cc.name), others)
    finally:
        container.close()


def _matrix(frame: Any) -> int:
    cs = int(frame.colorspace or 2)
    if cs in (_SWS_709, _SWS_601, 6, _SWS_2020, 10):
        return {6: _SWS_601, 10: _SWS_2020}.get(cs, cs)
    return _SWS_709 if frame.height >= 720 else _SWS_601


def to_rgb(frame: Any) -> np.ndarray:
    """A decoded PyAV video frame as (H, W, 3) uint8 RGB, using the frame's colour matrix.

    Any pixel format swscale reads works, 10- and 12-bit YUV included (reduced to 8 bits).
    """
    fmt = frame.format.name
    if fmt in ("rgb24", "gray", "rgba", "bgr24", "bgra"):
        rgb = frame.to_ndarray(format="rgb24")
    else:
        m = _matrix(frame)
        rgb = frame.reformat(format="rgb24", src_colorspace=m, dst_colorspace=m).to_ndarray()
    return np.ascontiguousarray(rgb)


_END = object()


class Decoder:
    """Decodes a file's first video stream into :class:`Frame` objects.

    Use either :meth:`frames` (synchronous, in the caller's thread) or :meth:`start` and
    :meth:`get` (a decoding thread that fills a bounded queue). :meth:`seek` and :meth:`stop`
    may be called from any thread.

    Args:
        path: the input file.
        queue_size: frames decoded ahead in threaded mode.
        threads: decoder threads (0: FFmpeg's choice).

    Raises:
        VideoError: as :func:`probe`; also while decoding (corrupt data, no frames at all).
    """

    def __init__(self, path: str | Path, queue_size: int = 8, threads: int = 0) -> None:
        self.path = Path(path)
        self.info = probe(self.path)
        self.threads = threads
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seek_to: tuple[Fraction, int] | None = None
        self._epoch = 0
        self.ended_epoch = 0
        """The epoch of the stream that :meth:`frames` last decoded to its end (a seek that
        arrives after the last frame belongs to a newer epoch and is not ended by it)."""
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.decoded = 0
        self.ms_per_frame = 0.0

    # ------------------------------------------------------------------ synchronous
    def frames(self) -> Iterator[Frame]:
        """Decode every frame in order (the caller's thread). Honours :meth:`seek` between
        frames (seeks to the nearest earlier keyframe and drops frames before the target)."""
        av = _av()
        container = _open_input(self.path)
        n = 0
        try:
            vs = _video_stream(container, self.path)
            vs.thread_type = "AUTO"
            if self.threads:
                vs.codec_context.thread_count = self.threads
            tb = self.info.time_base
            target: Fraction | None = None
            epoch = 0
            last: Fraction | None = None
            seeked = False
            while True:
                restart = False
                t0 = time.perf_counter()
                try:
                    for vf in container.decode(vs):
                        if self._stop.is_set():
                            return
                        with self._lock:
                            seek = self._seek_to
                            self._seek_to = None
                        if seek is not None:
                            target, epoch = seek
                            seeked = True
                            ticks = int(target / tb)
                            container.seek(max(0, ticks), stream=vs, backward=True)
                            last = None
                            restart = True
                            break
                        if vf.pts is not None:
                            pts = Fraction(vf.pts) * tb
                        elif last is not None:
                            pts = last + 1 / self.info.fps
                        else:
                            pts = self.info.start
                        if last is not None and pts <= last:
                            log.debug("dropping frame with non-increasing pts %s", pts)
                            continue
                        if target is not None and pts < target:
                            continue
                        target = None
                        last = pts
                        rgb = to_rgb(vf)
                        dt = (time.perf_counter() - t0) * 1000.0
                        self.ms_per_frame = dt if n == 0 else 0.9 * self.ms_per_frame + 0.1 * dt
                        self.decoded = n = n + 1
                        yield Frame(rgb, pts, index=n - 1, epoch=epoch)
                        t0 = time.perf_counter()
                except av.error.FFmpegError as exc:
                    raise VideoError(f"cannot decode {self.path}: corrupt or truncated data "
                                     f"after {n} frames ({exc.strerror or exc})") from None
                if not restart:
                    self.ended_epoch = epoch
                    break
        finally:
            container.close()
        if n == 0 and not seeked and not self._stop.is_set():
            raise VideoError(f"{self.path} has no decodable video frames")

    # ------------------------------------------------------------------ threaded
    def start(self) -> Decoder:
        """Start the decoding thread (frames come from :meth:`get`)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="m23-decode", daemon=True)
            self._thread.start()
        return self

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for f in self.frames():
                if f.epoch != self._epoch:
                    continue
                if not self._put(f):
                    return
        except BaseException as exc:  # handed to the consumer's thread by get()
            self.error = exc
        self._put(_END)

    def get(self, timeout: float | None = None) -> Frame | None:
        """The next frame (threaded mode); None at the end of the stream.

        Raises:
            VideoError: a decoding error of the thread.
            queue.Empty: nothing arrived within ``timeout``.
        """
        while True:
            item = self._queue.get(timeout=timeout)
            if item is _END:
                self._queue.put(_END)  # later calls see the end too
                if self.error is not None:
                    raise self.error
                return None
            if item.epoch == self._epoch:
                return item  # type: ignore[no-any-return]

    def seek(self, pts: Fraction | float, epoch: int | None = None) -> int:
        """Continue from the first frame at or after ``pts`` seconds; returns the new epoch.
        Frames already queued from before the seek are discarded."""
        with self._lock:
            self._epoch = self._epoch + 1 if epoch is None else epoch
            self._seek_to = (Fraction(pts), self._epoch)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        return self._epoch

    @property
    def seek_pending(self) -> bool:
        """Whether a seek waits to be carried out."""
        return self._seek_to is not None

    @property
    def epoch(self) -> int:
        """The current seek generation."""
        return self._epoch

    def queue_depth(self) -> int:
        """Frames waiting in the decoder's queue."""
        return self._queue.qsize()

    def stop(self) -> None:
        """Stop decoding and wait for the thread (if any) to end."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5.0)


def temp_name(output: Path) -> Path:
    """The temporary file an output is written to before the final rename: hidden, in the same
    folder (so the rename is atomic), with the same extension (so the container is the same)."""
    return output.with_name(f".{output.stem}.m23-partial-{os.getpid()}{output.suffix}")


def _lcm(a: int, b: int) -> int:
    from math import gcd

    return a * b // gcd(a, b)


@dataclass(frozen=True)
class EncodeOptions:
    """How :class:`Encoder` writes.

    Attributes:
        codec: an FFmpeg encoder name ("libx264", "libx265", "libvpx-vp9", "mpeg4", ...).
        crf: constant rate factor (quality; lower is better) for codecs that have one.
        preset: encoder speed preset (x264/x265).
        pix_fmt: output pixel format.
        drop_streams: if True, streams the container cannot hold are left out with a warning;
            otherwise they are an error.
        overwrite: replace an existing output.
        threads: encoder threads (0: FFmpeg's choice).
    """

    codec: str = "libx264"
    crf: float | None = 18
    preset: str | None = "veryfast"
    pix_fmt: str = "yuv420p"
    drop_streams: bool = False
    overwrite: bool = False
    threads: int = 0


class Encoder:
    """Encodes :class:`Frame` objects into a file, copying the template input's other streams.

    Args:
        output: the final path; the container follows its extension.
        width, height: size of the frames to come (odd sizes are padded to even by repeating
            the last row/column, as yuv420p needs).
        time_base: seconds per tick of the output video stream; every frame's pts must be a
            multiple of it (see ``app.pipeline.output_time_base``).
        rate: the nominal frame rate written into the stream.
        template: the input whose audio/subtitle/data streams are copied (None: video only).
        options: codec, quality and what to do with existing outputs and foreign streams.
        colorspace: the swscale colour matrix for RGB -> YUV (default: BT.709 from 720 lines
            up, BT.601 below).

    Raises:
        VideoError: existing output (without ``overwrite``), output equal to the template,
            unwritable folder, unknown container or codec, a stream the container cannot hold.
    """

    def __init__(
        self,
        output: str | Path,
        width: int,
        height: int,
        time_base: Fraction,
        rate: Fraction,
        template: str | Path | None = None,
        options: EncodeOptions | None = None,
        colorspace: int | None = None,
    ) -> None:
        av = _av()
        o = options or EncodeOptions()
        codec, crf, preset, overwrite = o.codec, o.crf, o.preset, o.overwrite
        self.output = Path(output)
        check_output(self.output, template, overwrite)
        if codec not in av.codecs_available:
            raise VideoError(f"unknown video codec {codec!r} (not in this FFmpeg build)")
        if preset is not None and codec in ("libx264", "libx265") and preset not in X264_PRESETS:
            raise VideoError(f"unknown preset {preset!r} for {codec}; choose from "
                             f"{', '.join(X264_PRESETS)}")
        self.tmp = temp_name(self.output)
        self.width, self.height = width + width % 2, height + height % 2
        self.src_size = (width, height)
        self.time_base = time_base
        self.rate = rate
        self.frames = 0
        self.ms_per_frame = 0.0
        self._matrix = colorspace or (_SWS_709 if self.height >= 720 else _SWS_601)
        self._copy: dict[int, Any] = {}
        self._demux: Iterator[Any] | None = None
        self._pending: Any = None
        self._template_in: Any = None
        self._last_pts = Fraction(-1)
        try:
            self.container = av.open(str(self.tmp), "w")
        except ValueError as exc:
            raise VideoError(f"cannot write {self.output}: unknown container for its extension "
                             f"({exc})") from None
        except (OSError, av.error.FFmpegError) as exc:
            self.tmp.unlink(missing_ok=True)
            raise VideoError(f"cannot write in {self.output.parent}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            self._setup(codec, crf, preset, o.pix_fmt, rate, template, o.drop_streams,
                        o.threads)
        except BaseException:
            self.abort()
            raise

    def _setup(self, codec: str, crf: float | None, preset: str | None, pix_fmt: str,
               rate: Fraction, template: str | Path | None, drop: bool, threads: int) -> None:
        av = _av()
        supported = self.container.supported_codecs
        fmt_name = self.container.format.name
        vcodec = av.Codec(codec, "w")
        if vcodec.name not in supported and codec not in supported:
            raise VideoError(f"the {self.output.suffix} container ({fmt_name}) cannot hold "
                             f"{codec} video; choose another --codec or container")
        opts: dict[str, str] = {}
        if crf is not None and codec in ("libx264", "libx265", "libvpx-vp9", "libvpx",
                                         "libsvtav1", "libaom-av1"):
            opts["crf"] = f"{crf:g}"
            if codec.startswith("libvpx"):
                opts["b"] = "0"
        if preset is not None and codec in ("libx264", "libx265"):
            opts["preset"] = preset
        vs = self.container.add_stream(codec, rate=rate, options=opts)
        vs.width, vs.height = self.width, self.height
        vs.pix_fmt = pix_fmt
        vs.time_base = self.time_base
        vs.codec_context.time_base = self.time_base
        if threads:
            vs.codec_context.thread_count = threads
        try:
            vs.codec_context.colorspace = self._matrix
        except (AttributeError, TypeError, ValueError):
            log.debug("cannot tag the colour matrix")
        self.stream = vs
        if template is not None:
            self._template_in = av.open(str(template), "r")
            src_v = _video_stream(self._template_in, Path(template))
            for s in self._template_in.streams:
                if s.index == src_v.index or s.type == "video":
                    continue
                name = s.codec_context.name if s.codec_context else "?"
                if s.type == "attachment" or name not in supported:
                    msg = (f"the {self.output.suffix} container ({fmt_name}) cannot hold "
                           f"{s.type} stream #{s.index} ({name})")
                    if not drop:
                        raise VideoError(msg + "; pass --drop-audio to continue without it")
                    log.warning("%s: left out (--drop-audio)", msg)
                    continue
                try:
                    self._copy[s.index] = self.container.add_stream_from_template(s)
                except (ValueError, av.error.FFmpegError) as exc:
                    msg = f"cannot copy {s.type} stream #{s.index} ({name}): {exc}"
                    if not drop:
                        raise VideoError(msg + "; pass --drop-audio to continue without it") \
                            from None
                    log.warning("%s: left out (--drop-audio)", msg)
            if self._copy:
                self._demux = iter(self._template_in.demux(
                    [self._template_in.streams[i] for i in self._copy]))
        try:
            self.container.start_encoding()
        except (av.error.FFmpegError, ValueError) as exc:
            raise VideoError(f"cannot start writing {self.output}: {exc}") from None

    def _copy_until(self, t: Fraction | None) -> None:
        """Mux copied packets with a timestamp before ``t`` seconds (all when None)."""
        if self._demux is None:
            return
        while True:
            pkt = self._pending
            if pkt is None:
                try:
                    pkt = next(self._demux)
                except StopIteration:
                    self._demux = None
                    return
                if pkt.dts is None and pkt.pts is None:
                    continue  # the demuxer's flush packets
            ts = pkt.dts if pkt.dts is not None else pkt.pts
            if t is not None and Fraction(ts) * Fraction(pkt.time_base) > t:
                self._pending = pkt
                return
            self._pending = None
            pkt.stream = self._copy[pkt.stream_index]
            self.container.mux(pkt)

    def write(self, frame: Frame) -> None:
        """Encode one frame (pts strictly after the previous frame's)."""
        av = _av()
        t0 = time.perf_counter()
        rgb = frame.rgb
        h, w = rgb.shape[:2]
        if (w, h) != self.src_size:
            raise VideoError(f"frame size {w}x{h} differs from the stream's "
                             f"{self.src_size[0]}x{self.src_size[1]}")
        if (w, h) != (self.width, self.height):
            rgb = np.pad(rgb, ((0, self.height - h), (0, self.width - w), (0, 0)), mode="edge")
        if frame.pts <= self._last_pts:
            raise VideoError(f"non-increasing output timestamp {frame.pts}")
        self._last_pts = frame.pts
        ticks = frame.pts / self.time_base
        if ticks.denominator != 1:
            log.debug("pts %s is not a multiple of the time base %s", frame.pts, self.time_base)
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        vf = vf.reformat(format=self.stream.pix_fmt, src_colorspace=self._matrix,
                         dst_colorspace=self._matrix)
        vf.pts = round(ticks)
        vf.time_base = self.time_base
        self._copy_until(frame.pts)
        self._mux_video(self.stream.encode(vf))
        self.frames += 1
        dt = (time.perf_counter() - t0) * 1000.0
        self.ms_per_frame = dt if self.frames == 1 else 0.9 * self.ms_per_frame + 0.1 * dt

    def _mux_video(self, packets: Any) -> None:
        for pkt in packets:
            if not pkt.duration:  # the last frame's display time: one nominal frame
                pkt.duration = max(1, round(1 / (self.rate * self.time_base)))
            self.container.mux(pkt)

    def close(self) -> Path:
        """Flush, copy the remaining packets, finish the file and rename it to the output."""
        try:
            self._mux_video(self.stream.encode(None))
            self._copy_until(None)
            self.container.close()
        except BaseException:
            self.abort()
            raise
        if self._template_in is not None:
            self._template_in.close()
            self._template_in = None
        if self.frames == 0:
            self.tmp.unlink(missing_ok=True)
            raise VideoError("no frames were written")
        os.replace(self.tmp, self.output)
        return self.output

    def abort(self) -> None:
        """Stop and remove the temporary file; the output is not created."""
        for c in (getattr(self, "container", None), self._template_in):
            if c is None:
                continue
            try:
                c.close()
            except Exception as exc:  # closing a half-written file can fail; it goes anyway
                log.debug("closing after an error: %s", exc)
        self._template_in = None
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if et is not None:
            self.abort()


def check_output(output: Path, inp: str | Path | None, overwrite: bool) -> None:
    """Refuse an output equal to the input, an existing one (unless ``overwrite``), a folder,
    or one in a folder that does not exist or cannot be written.

    Raises:
        VideoError: with the reason.
    """
    if inp is not None:
        src = Path(inp)
        if output.resolve() == src.resolve() or (output.exists() and src.exists()
                                                 and output.samefile(src)):
            raise VideoError(f"output {output} is the input; choose another name")
    if output.is_dir():
        raise VideoError(f"output {output} is a folder")
    if output.exists() and not overwrite:
        raise VideoError(f"output {output} exists; pass --overwrite to replace it")
    parent = output.parent
    if not parent.is_dir():
        raise VideoError(f"cannot write in {parent}: no such folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VideoError(f"cannot write in {parent}: permission denied")
