"""`tensorboard`: event files written without TensorFlow, read back by tensorboard's own reader."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inspector.cli import main
from inspector.stats import compute_stats
from tests.conftest import FIXTURES

RUNS = [FIXTURES / "seed/tf_keras/ckpt/weights", FIXTURES / "edge/nonfinite/weights.h5"]


def _accumulate(run_dir):
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(run_dir), size_guidance={ea.HISTOGRAMS: 0, ea.SCALARS: 0})
    acc.Reload()
    return acc


def test_runs_read_back_by_tensorboard(tmp_path, capsys):
    assert main(["tensorboard", *map(str, RUNS), "--logdir", str(tmp_path), "--step", "7"]) == 0
    out = capsys.readouterr().out
    assert "weights: 10 tensors" in out and "weights.h5: 4 tensors" in out
    runs = sorted(p.name for p in tmp_path.iterdir())
    assert runs == ["weights", "weights.h5"]  # one run per artifact

    for path, run in zip(RUNS, runs):
        acc = _accumulate(tmp_path / run)
        stats = {s.tensor.name if s.tensor.role == "weight" else f"{s.tensor.role}/{s.tensor.name}": s
                 for s in compute_stats(str(path)).tensors if s.count and s.mean is not None or s.nan}
        tags = acc.Tags()
        assert set(tags["histograms"]) == set(stats)
        for tag, s in stats.items():
            (event,) = acc.Histograms(tag)
            assert event.step == 7
            histo = event.histogram_value
            finite = s.count - s.nan - s.posinf - s.neginf
            assert sum(histo.bucket) == histo.num == finite
            assert (histo.min, histo.max) == (pytest.approx(s.min), pytest.approx(s.max))
            (mean,) = acc.Scalars(f"{tag}/mean")
            assert mean.value == pytest.approx(s.mean, rel=1e-6, abs=1e-12)  # stored as float32
            (nonfinite,) = acc.Scalars(f"{tag}/nonfinite")
            assert nonfinite.value == s.nan + s.posinf + s.neginf


def test_tensorflow_reads_the_records_checksums_included(tmp_path):
    main(["tensorboard", str(RUNS[1]), "--logdir", str(tmp_path)])
    (event_file,) = (tmp_path / "weights.h5").glob("events.out.tfevents.*")
    import tensorflow as tf

    events = list(tf.compat.v1.train.summary_iterator(str(event_file)))
    assert events[0].file_version == "brain.Event:2"
    tags = {v.tag for v in events[1].summary.value}
    assert {"dense/kernel", "dense/kernel/nonfinite", "dense_1/bias/std"} <= tags


def test_writing_runs_imports_no_tensorflow(tmp_path):
    code = ("import sys\nfrom inspector.tensorboard import write_runs\n"
            f"write_runs([{str(RUNS[0])!r}], {str(tmp_path)!r})\n"
            "assert 'tensorflow' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=FIXTURES.parent)
