"""The README's and the manual's examples run as written, and every public
name has an entry in the API reference.

Every ```python block of README.md and docs/*.md runs, a page's blocks in
order in one fresh namespace (a later block uses what an earlier one
defined, as a reader would), in a temporary working directory (examples
write `logs/...`). Every `fit` in them must end with a finite loss. A block
that cannot run as written is preceded by `<!-- not-run: <reason> -->`; it
is reported as a skipped test with that reason (`-ra`).

The examples run on the default backend only (marker `tensorflow_only`):
the backends are checked by the rest of the suite, and running the manual
three times would only triple CI's time.
"""

import ast
import importlib
import inspect
import math
import pathlib
import re

import keras
import pytest

import kdrop

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = DOCS / "api"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^```python\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.+?)\s*-->")


def code_blocks(page):
    """`[(line, code, reason)]` for every ```python block of `page`: the
    line of its fence, its code, and the reason of a `not-run` comment
    right before it (blank lines between allowed), else None."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
        not_run = NOT_RUN.fullmatch(before)
        blocks.append((line, match.group(1), not_run and not_run.group(1)))
    return blocks


def _name(page):
    return str(page.relative_to(ROOT))


def _page_params():
    params = []
    for page in PAGES:
        blocks = code_blocks(page)
        if any(reason is None for _, _, reason in blocks):
            params.append(pytest.param(page, id=_name(page)))
    return params


def _not_run_params():
    return [
        pytest.param(
            reason,
            id=f"{_name(page)}:{line}",
            marks=pytest.mark.skip(reason=f"not-run, {_name(page)}:{line}: {reason}"),
        )
        for page in PAGES
        for line, _, reason in code_blocks(page)
        if reason is not None
    ]


# What the examples' fits are checked for (they run, their losses are
# finite) does not need the epochs an example sets for its reader's result:
# docs/active_learning.md's 50-epoch loops alone took over 500 s of the
# TensorFlow pass. Likewise an active-learning loop's rounds: each one
# builds, compiles and trains a new model, and one acquisition round shows
# that the example runs (docs/active_learning.md's 23 rounds took 48 s).
MAX_EPOCHS = 2
MAX_ROUNDS = 1


@pytest.fixture
def checked_fits(monkeypatch):
    """Every `Model.fit` of the examples, quiet, at most MAX_EPOCHS epochs
    past its `initial_epoch`, its loss history recorded; every
    `run_active_learning` at most MAX_ROUNDS rounds."""
    histories = []
    fit = keras.Model.fit

    def checked_fit(model, *args, **kwargs):
        kwargs.setdefault("verbose", 0)
        if "epochs" in kwargs:
            last = kwargs.get("initial_epoch", 0) + MAX_EPOCHS
            kwargs["epochs"] = min(kwargs["epochs"], last)
        history = fit(model, *args, **kwargs)
        histories.append(history.history.get("loss", []))
        return history

    monkeypatch.setattr(keras.Model, "fit", checked_fit)
    loop = kdrop.active_learning.run_active_learning

    def capped_loop(*args, **kwargs):
        if "rounds" in kwargs:
            kwargs["rounds"] = min(kwargs["rounds"], MAX_ROUNDS)
        return loop(*args, **kwargs)

    monkeypatch.setattr(kdrop.active_learning, "run_active_learning", capped_loop)
    return histories


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("page", _page_params())
def test_examples_run(page, tmp_path, monkeypatch, checked_fits):
    monkeypatch.chdir(tmp_path)
    keras.backend.clear_session()
    policy = keras.mixed_precision.global_policy()
    namespace = {"__name__": "__docs_example__"}
    trains = False
    try:
        for line, code, reason in code_blocks(page):
            if reason is not None:
                continue
            trains = trains or ".fit(" in code
            # Padded so that a traceback gives the line in the page.
            source = "\n" * line + code
            exec(compile(source, _name(page), "exec"), namespace)
    finally:
        keras.mixed_precision.set_global_policy(policy)
        keras.backend.clear_session()
    assert bool(checked_fits) == trains, "a `.fit(` example did not train"
    for losses in checked_fits:
        assert losses and all(math.isfinite(loss) for loss in losses), losses


@pytest.mark.parametrize("reason", _not_run_params() or [None])
def test_blocks_not_run(reason):
    """One skipped test per `not-run` block, with its reason (none yet)."""
    assert reason is None


def test_pages_have_examples_to_run():
    # The fence pattern finds the examples (a change of format would
    # silently run nothing).
    assert len(code_blocks(ROOT / "README.md")) >= 2
    assert sum(len(code_blocks(page)) for page in PAGES) >= 15


# --- API reference ----------------------------------------------------------


def public_modules():
    """`kdrop` and every module in its `__all__`."""
    return ["kdrop"] + [
        f"kdrop.{name}"
        for name in kdrop.__all__
        if inspect.ismodule(getattr(kdrop, name))
    ]


def public_names(module_name):
    """`__all__`, or else the functions, classes and constants defined in
    the module's own source (not imported), without a leading underscore."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    names = []
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [name for name in names if not name.startswith("_")]


def documented_names():
    """Names with an entry in docs/api/: a `::: name` directive
    (mkdocstrings renders its docstring) or a `- `name`` list item (a
    re-export, pointing to where it is rendered)."""
    names = set()
    for page in API.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        names |= set(re.findall(r"^::: ([\w.]+)\s*$", text, re.MULTILINE))
        names |= set(re.findall(r"^- `([\w.]+)`", text, re.MULTILINE))
    return names


def test_the_modules_the_reference_covers():
    assert set(public_modules()) >= {
        "kdrop",
        "kdrop.layers",
        "kdrop.callbacks",
        "kdrop.schedules",
        "kdrop.inference",
        "kdrop.tensorboard",
        "kdrop.registry",
        "kdrop.uncertainty",
        "kdrop.datasets",
        "kdrop.optimizers",
        "kdrop.optimizer_schedules",
        "kdrop.layer_paths",
    }


def test_every_public_name_is_in_the_api_reference():
    documented = documented_names()
    missing = [
        f"{module}.{name}"
        for module in public_modules()
        for name in public_names(module)
        if f"{module}.{name}" not in documented
    ]
    assert not missing, (
        "public names without an entry in docs/api/*.md (add `::: <name>` "
        f"to the module's page, or a `- `<name>`` line for a re-export): {missing}"
    )


def test_api_reference_has_no_stale_entries():
    # Every `::: name` must still exist (mkdocs --strict says so too, but
    # only where the docs are built).
    for name in documented_names():
        module, _, attribute = name.rpartition(".")
        if not module:
            continue
        try:
            target = importlib.import_module(name)
        except ImportError:
            target = getattr(importlib.import_module(module), attribute, None)
        assert target is not None, f"docs/api/ documents {name}, which is gone"
