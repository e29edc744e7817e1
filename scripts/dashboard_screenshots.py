#!/usr/bin/env python3
"""Screenshots of TensorBoard's dashboards over a log directory.

    .venv/bin/python scripts/dashboard_screenshots.py logs/cnn_dropout

starts `tensorboard` on a loopback port, waits until it has read every
event file, and saves the Custom Scalars, HParams, Time Series and Images
dashboards, as headless Chromium shows them once loaded, to
`docs/tensorboard_<dashboard>.png` (1400 x 900; `--out` picks another
folder, created if missing). Each file is read back: a missing, empty or
non-PNG file, or one of another size, is reported and the script exits
with status 1. Needs what the browser test needs: Debian's `chromium` and
`chromium-driver` and `selenium`. The README's screenshots come from the
main job's default run.

    .venv/bin/python scripts/dashboard_screenshots.py logs/short \
        --vs-keras logs/short_keras

saves instead the page TensorBoard opens on (Time Series) for each of two
log directories of the same training run, `logdir` (kdrop's callbacks) and
the `--vs-keras` one (Keras's TensorBoard callback alone:
`scripts/cnn_dropout.py --keras-tensorboard-only`), to
`tensorboard_first_screen_kdrop.png` and
`tensorboard_first_screen_keras.png`, and prints the groups and cards
each shows without scrolling.
"""

import argparse
import os
import struct
import sys
import tempfile
import time

# The browser helpers live with the test that checks the same pages.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests import tensorboard_browser as browser


def _charts_drawn(driver):
    """The first screen's charts have their lines: the margin charts of a
    multi-seed run, else every multi-line chart."""
    margin = [charts for _, charts in browser.margin_charts(driver) if charts]
    if margin:
        return all(lines for _, lines in margin[0])
    categories = browser.custom_scalar_charts(driver)
    return categories and all(lines for _, charts in categories for _, lines in charts)


def _images_loaded(driver):
    cards = browser.image_cards(driver)
    return cards and all(width > 0 for *_, width in cards)


_ON_SCREEN = """
const box = arguments[0].getBoundingClientRect();
return box.height > 0 && box.top < window.innerHeight;
"""


def _close_settings(driver, timeout):
    """Closes the Time Series settings pane, which covers the right-hand
    cards; the page is otherwise shown as it opens (its first screen)."""
    (settings,) = browser.wait_for(
        lambda: browser.deep_elements(
            driver, 'button[aria-label="Toggle settings side pane"]'
        ),
        timeout,
        lambda: "the Time Series page has no settings button",
    )
    settings.click()


def _time_series_drawn(driver):
    """Every card on screen has its lines: a scalar card its series, a
    histogram card (Keras's `histogram_freq`) its shapes. TensorBoard
    draws only the cards on screen."""
    cards = [
        card
        for card in browser.deep_elements(driver, "card-view")
        if driver.execute_script(_ON_SCREEN, card)
    ]
    return cards and all(
        browser.deep_elements(
            driver,
            "div.series-view svg path"
            if browser.deep_elements(driver, "scalar-card", card)
            else "svg path",
            card,
        )
        for card in cards
    )


def _actual_image_size(driver, timeout):
    """Ticks the Images dashboard's "Show actual image size" box (figures
    are otherwise shrunk to the width of a card) and zooms the page out so
    that a figure of the scripts fits the window's width."""
    (box,) = browser.wait_for(
        lambda: [
            box
            for box in browser.deep_elements(driver, "paper-checkbox")
            if box.get_property("textContent").strip() == "Show actual image size"
        ],
        timeout,
        lambda: 'the Images page has no "Show actual image size" box',
    )
    driver.execute_script("arguments[0].click();", box)
    driver.execute_script("document.body.style.zoom = arguments[0];", IMAGES_ZOOM)


# dashboard -> (what to do once it is open, or None; when it is drawn)
DASHBOARDS = {
    "custom_scalars": (None, _charts_drawn),
    "hparams": (None, lambda driver: browser.hparams_table(driver)[1]),
    "timeseries": (_close_settings, _time_series_drawn),
    "images": (_actual_image_size, _images_loaded),
}
# The scripts' figures are up to 1200 pixels wide: at 0.8 the 1400-pixel
# window holds 1750 page pixels, the Images sidebar (about 350) included.
IMAGES_ZOOM = 0.8
# Lines are drawn a moment after the elements that hold them appear.
SETTLE_SECONDS = 1


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_problem(path, size):
    """Why the file at `path` is not a PNG image of `size` = (width,
    height) pixels, in words; None when it is."""
    if not os.path.isfile(path):
        return f"{path} was not written"
    with open(path, "rb") as handle:
        head = handle.read(24)
    if not head:
        return f"{path} is empty"
    # A PNG starts with its signature and the IHDR chunk: length, b"IHDR",
    # width, height (big-endian 4-byte ints).
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return f"{path} is not a PNG file (it starts with {head[:8]!r})"
    width, height = struct.unpack(">II", head[16:24])
    if (width, height) != tuple(size):
        return f"{path} is {width} x {height} pixels, expected {size[0]} x {size[1]}"
    return None


def output_folder(parser, out):
    """Creates the folder `out` (and its parents) if missing; a path that
    exists and is not a folder, or one that cannot be created, is a
    command-line error (exit status 2)."""
    if os.path.exists(out) and not os.path.isdir(out):
        parser.error(f"--out must be a folder; {out!r} is a file")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        parser.error(f"--out {out!r} cannot be created: {error.strerror}")
    return out


def _save(driver, url, dashboard, path, timeout):
    """Opens `dashboard`, waits until it is drawn and saves it to `path`;
    returns why the file read back is not the screenshot, or None."""
    prepare, drawn = DASHBOARDS[dashboard]
    browser.open_dashboard(driver, url, dashboard)
    if prepare is not None:
        prepare(driver, timeout)
    browser.wait_for(
        lambda: drawn(driver), timeout, lambda: f"{dashboard} was not drawn"
    )
    time.sleep(SETTLE_SECONDS)
    # save_screenshot returns False, without raising, when it cannot
    # write: the file read back says what happened.
    driver.save_screenshot(path)
    problem = png_problem(path, browser.WINDOW)
    if problem:
        return problem
    errors = [
        entry["message"]
        for entry in browser.console_log(driver)
        if entry["level"] == "SEVERE"
    ]
    print(path, "console errors:", errors or "none")
    return None


def first_screen(driver):
    """[(group, [tags of its cards])] of the Time Series page, for the
    groups whose header and the cards whose top are within the window (seen
    without scrolling, if only in part)."""
    height = browser.WINDOW[1]
    return [
        (group, [tag for tag, _, top, _ in cards if top < height])
        for group, _, top, cards in browser.time_series_layout(driver)
        if top < height
    ]


def _screenshots(logdir, logged, shots, timeout):
    """Saves the screenshots `shots`, [(dashboard, path)], of TensorBoard
    started on `logdir`, once it serves the tags `logged`; returns the
    problems of the files read back."""
    failures = []
    with tempfile.TemporaryDirectory() as scratch:
        server_log = os.path.join(scratch, "tensorboard.log")
        with browser.tensorboard_server(logdir, server_log) as url:
            browser.wait_for(
                lambda: browser.served_tags(url) == logged,
                timeout,
                lambda: f"TensorBoard did not load every run of {logdir}",
            )
            driver = browser.chromium()
            try:
                for dashboard, path in shots:
                    problem = _save(driver, url, dashboard, path, timeout)
                    if problem:
                        failures.append(problem)
                        print(f"FAILED: {problem}", file=sys.stderr)
                    elif dashboard == "timeseries":
                        seen = first_screen(driver)
                        cards = sum(len(tags) for _, tags in seen)
                        print(f"  first screen: {cards} cards in {len(seen)} groups")
                        for group, tags in seen:
                            print(f"    {group}: {', '.join(tags) or '(no card)'}")
            finally:
                driver.quit()
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="scripts/dashboard_screenshots.py",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("logdir", help="the directory TensorBoard is started on")
    parser.add_argument("--out", default="docs", help="folder of the PNG files")
    parser.add_argument(
        "--timeout", type=float, default=180, help="seconds to wait for each page"
    )
    parser.add_argument(
        "--vs-keras",
        metavar="KERAS_LOGDIR",
        help="instead of the four dashboards, save the first screen (Time "
        "Series) of logdir and of KERAS_LOGDIR, the same training run logged "
        "by keras.callbacks.TensorBoard alone",
    )
    args = parser.parse_args(argv)
    logged = {}
    for logdir in filter(None, (args.logdir, args.vs_keras)):
        logged[logdir] = browser.logged_tags(logdir)
        if not logged[logdir]:
            parser.error(
                f"no event files with scalars, histograms or images below {logdir!r}"
            )
    output_folder(parser, args.out)
    if args.vs_keras is None:
        runs = [
            (
                args.logdir,
                [
                    (name, os.path.join(args.out, f"tensorboard_{name}.png"))
                    for name in DASHBOARDS
                ],
            )
        ]
    else:
        runs = [
            (
                logdir,
                [
                    (
                        "timeseries",
                        os.path.join(args.out, f"tensorboard_first_screen_{who}.png"),
                    )
                ],
            )
            for who, logdir in (("kdrop", args.logdir), ("keras", args.vs_keras))
        ]
    failures = []
    for logdir, shots in runs:
        failures += _screenshots(logdir, logged[logdir], shots, args.timeout)
    if failures:
        shots = sum(len(shots) for _, shots in runs)
        print(
            f"{parser.prog}: {len(failures)} of {shots} screenshots "
            "failed: " + "; ".join(failures),
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
