"""`ckinspect`: what is in a Keras/TensorFlow artifact (no TensorFlow needed)."""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

import click

from . import clikit
from .registry import FORMAT_IDS

FORMAT_HELP = "Read PATH as this format instead of detecting it."
FORMAT_CHOICE = click.Choice(FORMAT_IDS)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--follow-links", is_flag=True, help="Read files an artifact reaches through symlinks leading out of its directory.")
@click.version_option(package_name="ckit", prog_name="ckinspect")
def cli(debug: bool, follow_links: bool) -> None:
    """Inspect Keras/TensorFlow checkpoints, weights files and saved models."""


@cli.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON (schema ckit.manifest/1).")
@click.option("--format", "format_", type=FORMAT_CHOICE, help=FORMAT_HELP)
@click.option("--map", "name_map", metavar="FILE",
              help="Show names as `ckconvert convert --map FILE` writes them (renamed; excluded tensors left out).")
@click.option("--names", type=click.Choice(["keras", "keys"]), default="keras", show_default=True,
              help="With --map: the names the map applies to, as ckconvert's --names.")
def dump(path: str, as_json: bool, format_: str | None, name_map: str | None, names: str) -> int:
    """List every tensor of PATH: key, canonical name, dtype, shape, bytes, role.

    PATH may be an HDF5 file, a .keras archive, a .weights.json index, a
    SavedModel directory, or a TF checkpoint given as prefix, .index file,
    .data-* file or directory holding a `checkpoint` file.
    """
    from .collector import paused
    from .registry import read_manifest
    from .render import render_json, render_table

    # Objects a row per tensor, from reading to printing, and no cycles among them: the collector
    # stays off throughout (re-enabled while they live, its next pass would scan every one of them).
    with paused():
        manifest = read_manifest(path, format_)
        if name_map is not None:
            from .namemap import NameMap, map_manifest

            manifest = map_manifest(manifest, NameMap.load(name_map), names)
        text = render_json(manifest) if as_json else render_table(manifest)
        click.echo(text)
    return 0


@cli.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the verification report as JSON.")
@click.option("--format", "format_", type=FORMAT_CHOICE, help=FORMAT_HELP)
def verify(path: str, as_json: bool, format_: str | None) -> int:
    """Read every byte of PATH and check every checksum; exit 1 naming each damaged tensor."""
    from .render import escape, human_bytes, wrap_line
    from .text import notes, plural
    from .verify import verify_artifact

    report = verify_artifact(path, format_)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        lines = [escape(f"DAMAGED  {problem.key}: {problem.message}") for problem in report.problems]
        status = "OK" if report.ok else f"FAILED ({len(report.problems)} damaged)"
        lines.append(
            f"{status}: {report.manifest.format} {escape(report.manifest.path)}: {report.checked} of "
            f"{plural(len(report.manifest.tensors), 'tensor')} read, {human_bytes(report.bytes_read)}"
        )
        lines = [wrapped for line in lines for wrapped in wrap_line(line, indent="         ")]
        lines.extend(notes([escape(note) for note in report.notes]))
        click.echo("\n".join(lines))
    return 0 if report.ok else 1


def _out_style():
    from .text import Style

    return Style.for_stream(sys.stdout)


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Absolute tolerance per element.")
@click.option("--rtol", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Relative tolerance per element (of B's value).")
@click.option("--map", "map_file", type=click.Path(dir_okay=False), help="Name map (JSON/YAML: rename, include, exclude) applied to A's canonical names before pairing.")
@click.option("--weights-only", is_flag=True, help="Compare model weights only (no optimizer state or counters).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON (schema ckit.diff/1).")
def diff(a: str, b: str, atol: float, rtol: float, map_file: str | None, weights_only: bool, as_json: bool) -> int:
    """Compare two artifacts of any formats tensor by tensor; exit 0 equal, 1 different.

    Tensors pair up by canonical name and role (the identity the converters
    use): an .h5 and the checkpoint made from it compare equal.  Reports
    tensors only in A or only in B, dtype/shape changes, and values beyond
    tolerance (|a-b| > atol + rtol*|b|; NaN equals NaN).
    """
    from .compare import diff as compare

    rename = None
    if map_file:
        from .namemap import NameMap

        rename = NameMap.load(map_file).apply
    report = compare(a, b, atol=atol, rtol=rtol, weights_only=weights_only, rename=rename,
                     progress=clikit.progress_for(_total_bytes(a) + _total_bytes(b)))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        from .text import render_diff

        click.echo(render_diff(report, _out_style()))
    return 0 if report.equal else 1


def _total_bytes(path: str) -> int:
    try:
        if os.path.isdir(path):
            return sum(f.stat().st_size for f in __import__("pathlib").Path(path).rglob("*") if f.is_file())
        return os.path.getsize(path)
    except OSError:
        return 0


@cli.command()
@click.argument("path")
@click.option("--key", "pattern", help="Only tensors whose key or name contains this (or matches this glob).")
@click.option("--fail-on-nonfinite", is_flag=True, help="Exit 1 when any tensor holds NaN or Inf.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON (schema ckit.stats/1).")
@click.option("--format", "format_", type=FORMAT_CHOICE, help=FORMAT_HELP)
def stats(path: str, pattern: str | None, fail_on_nonfinite: bool, as_json: bool, format_: str | None) -> int:
    """Per-tensor min, max, mean, std, L2 norm, zeros, NaN and Inf, read piece by piece.

    Memory stays bounded whatever the tensor sizes; tensors holding NaN or
    Inf are flagged.
    """
    from .stats import compute_stats

    report = compute_stats(path, format_, pattern, progress=clikit.progress_for(_total_bytes(path)))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        from .text import render_stats

        click.echo(render_stats(report, _out_style()))
    return 1 if fail_on_nonfinite and report.nonfinite else 0


@cli.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON (schema ckit.tree/1).")
@click.option("--format", "format_", type=FORMAT_CHOICE, help=FORMAT_HELP)
def tree(path: str, as_json: bool, format_: str | None) -> int:
    """The model as a tree: layers (nested models, cells), weights, parameter and byte counts.

    Layer classes and key config fields show where the artifact records a
    Keras config; optimizer state is listed apart from the model.
    """
    from .tree import read_tree

    result = read_tree(path, format_)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        from .text import render_tree

        click.echo(render_tree(result, _out_style()))
    return 0


@cli.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the signatures as JSON (schema ckit.signatures/1).")
def signatures(path: str, as_json: bool) -> int:
    """A SavedModel's tag sets, signatures, methods, inputs and outputs (TF1 and TF2)."""
    from .signatures import read_signatures

    report = read_signatures(path)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        from .text import render_signatures

        click.echo(render_signatures(report, _out_style()))
    return 0


@cli.command()
@click.argument("path")
@click.argument("key")
@click.option("--full", is_flag=True, help="Print every value instead of numpy's summary.")
@click.option("--npy", "npy", type=click.Path(dir_okay=False), help="Also save the tensor to this .npy file.")
@click.option("--force", is_flag=True, help="Replace an existing --npy file.")
@click.option("--format", "format_", type=FORMAT_CHOICE, help=FORMAT_HELP)
def cat(path: str, key: str, full: bool, npy: str | None, force: bool, format_: str | None) -> int:
    """Print one tensor's values; KEY is its key or canonical name (see `dump`)."""
    from .api import Artifact
    from .values import UnknownTensor, format_values, save_npy

    with Artifact(path, format_) as artifact:
        try:
            tensor = artifact[key]
        except UnknownTensor as exc:
            raise click.BadParameter(str(exc), param_hint="KEY") from None
        value = artifact.read(tensor.key)
    click.echo(f"{tensor.key}: {tensor.dtype} {list(tensor.shape)} ({tensor.name}, {tensor.role})")
    click.echo(format_values(value, full))
    if npy:
        saved = save_npy(value, npy, force)
        click.echo(f"saved {saved}", err=True)
    return 0


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--logdir", required=True, type=click.Path(file_okay=False), help="Directory for the runs (one per artifact).")
@click.option("--key", "pattern", help="Only tensors whose key or name contains this (or matches this glob).")
@click.option("--step", type=int, default=0, show_default=True, help="Step to record the values at.")
def tensorboard(paths: tuple[str, ...], logdir: str, pattern: str | None, step: int) -> int:
    """Write weight histograms and statistics as TensorBoard event files, one run per artifact.

    Written without TensorFlow; view with `tensorboard --logdir DIR`.
    """
    from .tensorboard import write_runs
    from .text import plural

    total = sum(_total_bytes(p) for p in paths)
    for run in write_runs(list(paths), logdir, pattern, step, progress=clikit.progress_for(2 * total)):
        click.echo(f"{run.run}: {plural(run.tensors, 'tensor')} from {run.path} -> {run.event_file}")
    return 0


@cli.command(name="formats")
def list_formats() -> int:
    """List the formats ckinspect reads."""
    from .registry import FORMAT_IDS, get_format

    for name in FORMAT_IDS:
        fmt = get_format(name)
        click.echo(f"{name:15} {fmt.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return clikit.run(cli, argv, "ckinspect")


def entry() -> None:
    """The `ckinspect` command (and `python -m inspector`): `main`, then an exit that skips tearing
    down what a large listing built, one object at a time (10 ms of a 0.22 s dump of 20,000
    tensors).  Once `main` has returned there is nothing left to clean up: its files are closed and
    its HDF5 workers stopped; output is flushed here.  An exception from `main` (`--debug`) leaves
    the usual way, with its traceback."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # the reader went away (`| head`), or a stream was closed
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
