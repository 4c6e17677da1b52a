"""ckit's own TensorBoard event file is read by TensorFlow's reader, checksums included."""

from __future__ import annotations

import sys
from pathlib import Path

from converters.validate.report import write_tensorboard
from tests.converters.test_validate import REPORT


def test_tensorflow_reads_the_event_file(tmp_path):
    write_tensorboard(REPORT, tmp_path)
    (path,) = Path(tmp_path).glob("events.out.tfevents.*")
    import tensorflow as tf

    events = list(tf.compat.v1.train.summary_iterator(str(path)))  # verifies each record's CRC32C
    assert events[0].file_version == "brain.Event:2"
    tags = {v.tag: v.simple_value for v in events[1].summary.value}
    assert abs(tags["baseline/accuracy"] - REPORT.baseline_accuracy) < 1e-6  # stored as float32


def test_writing_scalars_does_not_import_tensorflow(tmp_path):
    import subprocess

    code = (
        "import sys\n"
        "from converters.validate.report import write_tensorboard\n"
        "from tests.converters.test_validate import REPORT\n"
        f"write_tensorboard(REPORT, {str(tmp_path)!r})\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow imported to write an event file'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
