"""`ckconvert`: move a Keras/TensorFlow artifact into another format, and prove it."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from inspector import clikit
from inspector.registry import FORMAT_IDS

from .registry import TARGET_IDS

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
          "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4, "tb": 1000**4, "tib": 1024**4}


def parse_size(text: str | None) -> int | None:
    """'100MB' -> 100000000, '64MiB' -> 67108864; None stays None."""
    if text is None:
        return None
    match = _SIZE.match(text)
    unit = (match.group(2) or "").lower() if match else None
    if not match or unit not in _UNITS:
        raise click.BadParameter(
            f"'{text}' is not a size; expected a number with an optional unit like 100MB, 2GiB or 1e9",
            param_hint="'--max-shard-size'",
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise click.BadParameter(f"'{text}' must be larger than zero", param_hint="'--max-shard-size'")
    return size


MODEL_HELP = ("Training-model factory, e.g. mypkg.models:build: imports mypkg.models (from the current directory "
              "or PYTHONPATH) and calls build(keras) with the Keras module to build with (tf_keras or keras), or "
              "build() if it takes no parameters; the model it returns decides names and layer order when the "
              "artifact cannot.")


def _only_sources(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Narrow --format to the source formats a command accepts, so its help lists only those."""
    def narrow(function: Callable[..., Any]) -> Callable[..., Any]:
        for param in getattr(function, "__click_params__", []):
            if param.name == "source_format":
                param.type = click.Choice(names)
        return function
    return narrow


def _conversion_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--force", is_flag=True, help="Overwrite an existing destination."),
        click.option("--no-verify", is_flag=True, help="Skip re-reading the output and comparing every tensor."),
        click.option("--model", metavar="MODULE:FUNCTION", help=MODEL_HELP),
        click.option("--config", "model_config", metavar="ARCH.json",
                     help="Architecture JSON (model.to_json()) saved beside a weights-only SRC; read as data, "
                          "never run; replaces a config SRC embeds."),
        click.option("--format", "source_format", type=click.Choice(FORMAT_IDS),
                     help="Read SRC as this format instead of detecting it."),
        click.option("--max-shard-size", metavar="SIZE", help="Split output into shards of at most SIZE (e.g. 100MB)."),
        click.option("--no-optimizer", is_flag=True, help="Leave optimizer state out of the output."),
        click.option("--weights-only", is_flag=True,
                     help="Model weights only: leave optimizer state and counters (save_counter, global_step) out."),
        click.option("--names", type=click.Choice(["keras", "keys"]), default="keras", show_default=True,
                     help="Names in safetensors/npz output: canonical Keras names where known, else each "
                          "variable's own path (keras); or every tensor by its path (keys)."),
        click.option("--map", "name_map", metavar="FILE",
                     help="JSON/YAML rename/select map (rename: regex -> replacement; include/exclude patterns) "
                          "applied to names on the way (safetensors, npz, checkpoint to checkpoint)."),
        click.option("--layout", "layout_mode", type=click.Choice(["keep", "keras"]), default=None,
                     help="tf-checkpoint output from a checkpoint: keep its object graph (the default) or write "
                          "the tf_keras save_weights layout (keras)."),
        click.option("--quiet", "-q", is_flag=True, help="Print nothing on success."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _run_conversion(src: str, dst: str, to: str | None, *, allowed_sources: tuple[str, ...] | None = None,
                    command: str = "convert", **opts: Any) -> int:
    from inspector.errors import UnknownFormat
    from inspector.registry import detect, get_format

    from .convert import convert

    if allowed_sources is not None:
        fmt = get_format(opts["source_format"]) if opts.get("source_format") else detect(src)
        if fmt.name not in allowed_sources:
            raise UnknownFormat(
                f"{src} is {fmt.name}; '{command}' expects {' or '.join(allowed_sources)}; "
                f"use 'ckconvert convert {src} {dst} --to FORMAT' for other sources"
            )
    progress, finish = _progress_display(opts.get("quiet", False))
    try:
        result = convert(
            src,
            dst,
            to,
            source_format=opts.get("source_format"),
            model=opts.get("model"),
            config=opts.get("model_config"),
            force=opts.get("force", False),
            verify=not opts.get("no_verify", False),
            max_shard_size=parse_size(opts.get("max_shard_size")),
            include_optimizer=not opts.get("no_optimizer", False),
            progress=progress,
            names=opts.get("names") or "keras",
            name_map=opts.get("name_map"),
            layout_mode=opts.get("layout_mode"),
            weights_only=opts.get("weights_only", False),
        )
    finally:
        finish()
    if not opts.get("quiet"):
        from inspector.render import human_bytes

        check = "verified" if result.verified else "not verified (--no-verify)"
        click.echo(f"wrote {result.format} {result.dst}: {result.counts()}, {human_bytes(result.bytes)}, {check}")
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
    return 0


def _progress_display(quiet: bool):
    """A byte-counting progress line on a terminal; nothing when piped or quiet."""
    if quiet or not sys.stderr.isatty():
        return None, lambda: None
    state = {"bytes": 0, "tensors": 0}

    def progress(ref: Any, nbytes: int) -> None:
        state["bytes"] += nbytes
        state["tensors"] += 1
        from inspector.render import human_bytes
        from inspector.text import plural

        click.echo(f"\r  {plural(state['tensors'], 'tensor')}, {human_bytes(state['bytes'])} written  ", err=True,
                   nl=False)

    def finish() -> None:
        if state["tensors"]:
            click.echo("", err=True)

    return progress, finish


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--follow-links", is_flag=True, help="Read files an artifact reaches through symlinks leading out of its directory.")
@click.version_option(package_name="ckit", prog_name="ckconvert")
def cli(debug: bool, follow_links: bool) -> None:
    """Convert Keras/TensorFlow artifacts between formats, verify the result, validate the model."""


@cli.command("h5-to-tf")
@click.argument("src")
@click.argument("dst")
@_only_sources("h5-weights", "h5-model")
@_conversion_options
def h5_to_tf(src: str, dst: str, **opts: Any) -> int:
    """Keras 2 HDF5 weights or full model SRC -> TF checkpoint at prefix DST (with its `checkpoint` file)."""
    return _run_conversion(src, dst, "tf-checkpoint", allowed_sources=("h5-weights", "h5-model"),
                           command="h5-to-tf", **opts)


@cli.command("tf-to-h5")
@click.argument("src")
@click.argument("dst")
@_only_sources("tf-checkpoint", "saved-model")
@_conversion_options
def tf_to_h5(src: str, dst: str, **opts: Any) -> int:
    """TF checkpoint or SavedModel SRC -> Keras 2 HDF5 weights file DST."""
    return _run_conversion(src, dst, "h5-weights", allowed_sources=("tf-checkpoint", "saved-model"),
                           command="tf-to-h5", **opts)


@cli.command("convert")
@click.argument("src")
@click.argument("dst")
@click.option("--to", "to", type=click.Choice(TARGET_IDS), help="Target format. Default: from DST's suffix.")
@_conversion_options
def convert_command(src: str, dst: str, to: str | None, **opts: Any) -> int:
    """Convert SRC into DST, any format to any format.

    Without --to the target comes from DST: .weights.h5 / .weights.json ->
    keras3-weights, .keras -> keras3-model, .safetensors -> safetensors,
    .npz -> npz, .h5 -> h5-weights (h5-model when SRC is a full model), no suffix -> a TF
    checkpoint prefix.
    """
    return _run_conversion(src, dst, to, **opts)


@cli.command("formats")
def list_formats() -> int:
    """List the formats ckconvert writes."""
    from .registry import TARGET_IDS, get_writer

    for name in TARGET_IDS:
        writer = get_writer(name)
        click.echo(f"{name:15} {writer.description}")
    return 0


@cli.command("validate")
@click.argument("artifact", required=False)
@click.option("--model", metavar="MODULE:FUNCTION", help=MODEL_HELP + " Required with ARTIFACT.")
@click.option("--data", metavar="FILE.npz", help="Evaluation data: an .npz with x_test and y_test.")
@click.option("--dataset", type=click.Choice(["digits", "fashion_mnist"]), default=None,
              help="Named dataset: digits (ships with ckit, the default) or fashion_mnist (from Keras's local cache).")
@click.option("--json", "json_path", metavar="FILE", help="Write the report as JSON to FILE ('-' for stdout).")
@click.option("--logdir", metavar="DIR", help="Also write the figures as TensorBoard scalars to DIR.")
@click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto", show_default=True,
              help="Where the reloaded models run: auto (a GPU when the backend sees one, else the CPU), cpu "
                   "(GPUs hidden), gpu (refused when the backend sees none).")
@click.option("--backend", type=click.Choice(["tensorflow", "jax", "torch"]), default=None,
              help="Keras 3 backend for the Keras 3 loaders (default: tensorflow when installed, else jax).")
def validate_command(**options: Any) -> int:
    """Reload every artifact into the training model and prove accuracy and logits match.

    Without ARTIFACT: train the tutorial model on the embedded data, save it in
    every format, convert each with ckit into every other, reload each with the
    framework's own loader and print the matrix.  Exit 1 if anything differs.
    """
    from .validate import main_validate

    clikit.filter_native_logs_now()  # the worker subprocess loads TensorFlow and shares our stderr
    return main_validate(**options)


def main(argv: Sequence[str] | None = None) -> int:
    # ckconvert may load TensorFlow (SavedModel output, Keras config translation, validation).
    return clikit.run(cli, argv, "ckconvert", filter_native_logs=argv is None)


if __name__ == "__main__":
    sys.exit(main())
