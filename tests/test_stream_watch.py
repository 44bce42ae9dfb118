"""``rdfa-s6 watch`` end to end (slow): a live MPEG-TS stream served by the test over a local TCP socket gives the
detections of the same bytes read as a file; a stalled source stops with one line after flushing; Ctrl-C
(SIGINT to a subprocess) flushes and exits cleanly; a 24-hour feature stream keeps its memory flat."""
from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from _video_helpers import frame_image, labelled_colour_motion_data

from rdfa_s6.api import Detector
from rdfa_s6.cli import main
from rdfa_s6.video.clips import num_clips
from rdfa_s6.video.synth import VideoSynthSpec

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=16",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=64", "train.epochs=1",
        "train.batch_size=2", "train.warmup_epochs=0", "data.val_split=null"]

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny model trained on colour-motion features of synthetic videos (``rdfa-s6 extract``)."""
    root = tmp_path_factory.mktemp("watch")
    spec = VideoSynthSpec(train_videos=4, val_videos=0, test_videos=0, size=32, min_frames=90, max_frames=120,
                          action_frames=(20, 40), seed=5)
    labelled_colour_motion_data(root, spec)
    assert main(["train", "demo", "--data-root", str(root / "data"), "--out", str(root / "run"), "--no-progress",
                 *TINY]) == 0
    return root / "run"


def _ts_bytes(frames: int, fps: int = 30) -> bytes:
    """An MPEG-TS stream (mpeg4) of ``frames`` frames of the test pattern, in memory."""
    import io

    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mpegts") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"qscale": "2"}
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_image(k, 64, 48), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


class Server:
    """Serves ``data`` to the first client of a 127.0.0.1 socket in pieces (``pace`` s apart); with
    ``stall_at`` it stops sending after that many bytes and holds the connection open until ``release``."""

    def __init__(self, data: bytes, pace: float = 0.0, stall_at: int = -1) -> None:
        self.data, self.pace, self.stall_at = data, pace, stall_at
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.url = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.release = threading.Event()
        self.sent = threading.Event()  # everything up to the stall point is sent
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            end = len(self.data) if self.stall_at < 0 else self.stall_at
            for pos in range(0, end, 4096):
                conn.sendall(self.data[pos : min(pos + 4096, end)])
                if self.pace:
                    time.sleep(self.pace)
            self.sent.set()
            if self.stall_at >= 0:
                self.release.wait(120)
        self.sock.close()


def _lines(text: str):
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def test_a_live_tcp_stream_gives_the_detections_of_the_same_bytes_as_a_file(run_dir, tmp_path, capsys):
    data = _ts_bytes(240)
    (tmp_path / "same.ts").write_bytes(data)
    server = Server(data, pace=0.002)
    assert main(["watch", server.url, "--model", str(run_dir), "--out", str(tmp_path / "live.jsonl"),
                 "--srt", str(tmp_path / "live.srt"), "--no-progress"]) == 0
    assert "the source ended after 8.0 s of stream" in capsys.readouterr().err  # 240 frames at 30 fps
    assert main(["watch", str(tmp_path / "same.ts"), "--model", str(run_dir), "--no-progress"]) == 0
    from_file = _lines(capsys.readouterr().out)
    live = _lines((tmp_path / "live.jsonl").read_text())
    assert live and live == from_file
    srt = (tmp_path / "live.srt").read_text()
    assert srt.count(" --> ") == len(live) and srt.startswith("1\n") and f"\n\n{len(live)}\n" in srt
    # and the same as predict on the whole video (it is shorter than one window: 57 clips, windows of 64)
    assert num_clips(240, 16, 4) == 57
    det = Detector.from_pretrained(run_dir)
    whole = det.predict_video(tmp_path / "same.ts")
    assert [(d["segment"], d["score"]) for d in live] == [([d.start, d.end], d.score) for d in whole]


def test_a_stalled_source_flushes_and_stops_with_one_line(run_dir, tmp_path, capsys):
    data = _ts_bytes(400)
    server = Server(data, stall_at=len(data) * 3 // 4)
    try:
        code = main(["watch", server.url, "--model", str(run_dir), "--timeout", "1.5", "--window-steps", "32",
                     "--no-progress"])
    finally:
        server.release.set()
    captured = capsys.readouterr()
    assert code == 2
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "no data for 1.5 s (--timeout)" in err[0], err
    assert _lines(captured.out)  # the detections so far, flushed


def test_ctrl_c_flushes_the_pending_detections_and_exits_cleanly(run_dir, tmp_path):
    data = _ts_bytes(600)
    server = Server(data, stall_at=len(data) // 2)  # then silent: only Ctrl-C ends it
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    # windows of 256 steps: the ~75 steps sent never complete one, so every detection comes from the flush
    proc = subprocess.Popen([sys.executable, "-m", "rdfa_s6", "watch", server.url, "--model", str(run_dir),
                             "--timeout", "120", "--window-steps", "256", "--out", str(tmp_path / "d.jsonl")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.sent.wait(120)
        time.sleep(4.0)  # the frames sent are decoded and encoded
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        server.release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped (Ctrl-C) after" in err
    flushed = _lines((tmp_path / "d.jsonl").read_text())
    assert flushed and all(set(d) == {"segment", "label", "label_id", "score", "emitted"} for d in flushed)
    seconds = float(err.split("stopped (Ctrl-C) after ")[1].split(" s of stream")[0])
    assert seconds > 5 and all(d["emitted"] == pytest.approx(seconds, abs=0.05) for d in flushed)
    assert f"{len(flushed)} detections" in err


def test_follow_reads_a_file_while_it_is_written(run_dir, tmp_path, capsys):
    data = _ts_bytes(240)
    (tmp_path / "whole.ts").write_bytes(data)
    growing = tmp_path / "growing.ts"
    growing.write_bytes(data[:20000])

    def write_the_rest() -> None:
        time.sleep(2.0)
        with open(growing, "ab") as f:
            for pos in range(20000, len(data), 8192):
                f.write(data[pos : pos + 8192])
                f.flush()
                time.sleep(0.05)

    writer = threading.Thread(target=write_the_rest)
    writer.start()
    code = main(["watch", str(growing), "--follow", "--timeout", "4", "--model", str(run_dir), "--no-progress"])
    writer.join()
    followed = capsys.readouterr()
    assert code == 2 and "no data for 4 s (--timeout)" in followed.err  # a growing file ends by going quiet
    assert main(["watch", str(tmp_path / "whole.ts"), "--model", str(run_dir), "--no-progress"]) == 0
    assert _lines(followed.out) and _lines(followed.out) == _lines(capsys.readouterr().out)


def _rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux: ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_24_hour_feature_stream_keeps_memory_flat(run_dir):
    det = Detector.from_pretrained(run_dir, precision="fp32")
    # a row every 16 frames at 30 fps (as clips of 16 frames, no overlap): 24 h are 162,000 rows, 632 windows
    s = det.stream(30.0, stride=16, window=16, window_steps=512, hop_steps=256)
    rng = np.random.default_rng(0)
    chunk = rng.standard_normal((675, det.input_dim)).astype(np.float32)  # 6 min of rows
    hour = 30 * 3600 // 16
    peaks = {}
    emitted = 0
    for i in range(24 * hour // chunk.shape[0]):
        emitted += len(s.push(chunk))
        if (i + 1) * chunk.shape[0] in (hour, 24 * hour):
            peaks[(i + 1) * chunk.shape[0] // hour] = _rss_mb()
    assert s.stream_time == pytest.approx(24 * 3600, abs=1)
    assert emitted > 0 and s.windows_run == (24 * hour - 513) // 256 + 1
    print(f"peak RSS after 1 h of stream {peaks[1]:.1f} MB, after 24 h {peaks[24]:.1f} MB")
    assert peaks[24] - peaks[1] < 8.0
