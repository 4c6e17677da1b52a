"""`ckinspect`: what is in a Keras/TensorFlow artifact (no TensorFlow needed)."""

from __future__ import annotations

import json
import sys
from typing import Sequence

import click

from . import clikit
from .registry import FORMAT_IDS

FORMAT_HELP = "Read PATH as this format instead of detecting it."
FORMAT_CHOICE = click.Choice(FORMAT_IDS)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="ckit", prog_name="ckinspect")
def cli(debug: bool) -> None:
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
    from .registry import read_manifest
    from .render import render_json, render_table

    manifest = read_manifest(path, format_)
    if name_map is not None:
        from .namemap import NameMap, map_manifest

        manifest = map_manifest(manifest, NameMap.load(name_map), names)
    click.echo(render_json(manifest) if as_json else render_table(manifest))
    return 0


@cli.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the verification report as JSON.")
@click.option("--format", "format_", type=FORMAT_CHOICE, help=FORMAT_HELP)
def verify(path: str, as_json: bool, format_: str | None) -> int:
    """Read every byte of PATH and check every checksum; exit 1 naming each damaged tensor."""
    from .render import human_bytes
    from .verify import verify_artifact

    report = verify_artifact(path, format_)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for problem in report.problems:
            click.echo(f"DAMAGED  {problem.key}: {problem.message}")
        status = "OK" if report.ok else f"FAILED ({len(report.problems)} damaged)"
        click.echo(
            f"{status}: {report.manifest.format} {report.manifest.path}: {report.checked} of "
            f"{len(report.manifest.tensors)} tensors read, {human_bytes(report.bytes_read)}"
        )
        for note in report.notes:
            click.echo(f"note: {note}")
    return 0 if report.ok else 1


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


if __name__ == "__main__":
    sys.exit(main())
