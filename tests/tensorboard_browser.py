"""A real TensorBoard server and headless Chromium, for checking dashboards.

Used by tests/test_tensorboard_browser.py (what the dashboards show) and
scripts/dashboard_screenshots.py (the README's screenshots). Chromium and
its driver are Debian's (`apt-get install chromium chromium-driver`, done by
.ci/run); Selenium is pointed at that driver so it never tries to download
one (Selenium Manager needs the internet).
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.event_files import read_metadata

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1400, 900)
# The plugins whose tags the Time Series dashboard shows.
TIME_SERIES_PLUGINS = ("scalars", "histograms", "images")

# Elements matching a CSS selector below `root` (the document when None),
# inside shadow roots too: the Custom Scalars, Images and HParams dashboards
# are Polymer elements whose content lives in shadow DOM, where
# querySelectorAll does not look.
_DEEP_QUERY = """
const [root, selector] = arguments;
function* roots(node) {
  yield node;
  if (node.shadowRoot) yield* roots(node.shadowRoot);
  for (const element of node.querySelectorAll('*')) {
    if (element.shadowRoot) yield* roots(element.shadowRoot);
  }
}
const found = [];
for (const inner of roots(root === null ? document : root)) {
  found.push(...inner.querySelectorAll(selector));
}
return found;
"""


def free_port():
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


@contextlib.contextmanager
def tensorboard_server(logdir, output, timeout=180):
    """Runs `tensorboard --logdir logdir` on a free loopback port; yields its
    base URL once it answers `/data/runs`. The server's output goes to the
    file `output`. The server is stopped by its PID on exit."""
    port = free_port()
    with open(output, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                os.fspath(logdir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: _answers(url + "/data/runs"),
            timeout,
            lambda: f"TensorBoard did not answer on {url}: {_tail(output)}",
            stop_early=lambda: process.poll() is not None,
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url):
    try:
        get_json(url, timeout=1)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


def _tail(path, chars=2000):
    with open(path, errors="replace") as file:
        return file.read()[-chars:]


def logged_tags(logdir):
    """{run: set of tags} of the Time Series plugins in the event files
    below `logdir` (read with TensorBoard's EventAccumulator), runs named as
    TensorBoard names them: the directory relative to `logdir`."""
    tags = {}
    for directory, _, files in os.walk(logdir):
        if not any(name.startswith("events.out.tfevents") for name in files):
            continue
        run_tags = {
            tag
            for tag, metadata in read_metadata(directory, "").items()
            if metadata.plugin_data.plugin_name in TIME_SERIES_PLUGINS
        }
        if run_tags:
            tags[os.path.relpath(directory, logdir)] = run_tags
    return tags


def served_tags(url):
    """{run: set of tags} that the Time Series dashboard of the server at
    `url` can show (scalars, histograms and images), as loaded so far."""
    tags = get_json(url + "/data/plugin/timeseries/tags")
    served = {}
    for plugin in ("scalars", "histograms"):
        for run, run_tags in tags[plugin]["runTagInfo"].items():
            served.setdefault(run, set()).update(run_tags)
    for tag, runs in tags["images"]["tagRunSampledInfo"].items():
        for run in runs:
            served.setdefault(run, set()).add(tag)
    return served


def wait_for(condition, timeout, message, stop_early=lambda: False, poll=0.2):
    """Returns `condition()`'s first truthy value, polled every `poll` s;
    raises TimeoutError(message()) after `timeout` s or once `stop_early()`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if stop_early() or time.monotonic() > deadline:
            raise TimeoutError(message())
        time.sleep(poll)


def chromium(window=WINDOW):
    """Headless Chromium through Debian's chromedriver, with the browser
    console recorded (read it with `console_log`) and a viewport of
    `window` = (width, height) CSS pixels."""
    # Imported here so that the test module imports (and skips with a
    # reason) where selenium is not installed.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses
        "--disable-dev-shm-usage",
        f"--window-size={window[0]},{window[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # --window-size counts the (invisible) browser frame: set the page's
    # own size so screenshots are exactly `window`.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": window[0],
            "height": window[1],
            "deviceScaleFactor": 1,
            "mobile": False,
        },
    )
    return driver


def open_dashboard(driver, url, dashboard):
    """Loads TensorBoard's `dashboard` ("custom_scalars", "hparams",
    "timeseries", "images": the URL fragment) in a fresh page, so no other
    dashboard stays in the DOM. Time Series charts are drawn in SVG (the
    forceSVG option), not WebGL, which headless Chromium without a GPU
    leaves blank, and so their lines are in the DOM."""
    driver.get("about:blank")
    driver.get(f"{url}/?forceSVG=true#{dashboard}")


def deep_elements(driver, selector, root=None):
    """Elements matching `selector` below `root` (an element, or the whole
    page when None), shadow roots included, in document order."""
    return driver.execute_script(_DEEP_QUERY, root, selector)


def deep_texts(driver, selector, root=None):
    """The stripped text of each element `deep_elements` finds."""
    return [
        element.get_property("textContent").strip()
        for element in deep_elements(driver, selector, root)
    ]


def console_log(driver):
    """The browser console's entries since the last call."""
    return driver.get_log("browser")


# A vaadin-grid's rows as lists of cell texts: each header/body cell of the
# grid's own table holds a <slot> to which the cell's content is assigned.
_GRID_ROWS = """
const [grid, section] = arguments;
const text = (cell) => {
  const slot = cell.querySelector('slot');
  return slot ? slot.assignedElements().map(e => e.textContent.trim()).join('') : '';
};
return Array.from(grid.shadowRoot.querySelectorAll(section + ' tr'))
  .filter(row => !row.hidden)
  .map(row => Array.from(row.querySelectorAll('th, td')).map(text))
  .filter(cells => cells.some(cell => cell !== ''));
"""


def custom_scalar_charts(driver):
    """[(category title, [(chart title, sorted ["tag (run)", ...]), ...])]
    as the Custom Scalars dashboard shows them, in page order."""
    categories = []
    for view in deep_elements(driver, "tf-category-paginated-view"):
        names = deep_texts(driver, "span.category-name", view)
        if not names:
            continue
        charts = [
            (
                deep_texts(driver, "div.heading-label.name", card)[0],
                sorted(
                    # "<marker symbol> <tag> (<run>)": the last two words
                    " ".join(entry.split()[-2:])
                    for entry in deep_texts(driver, "div.match-list-entry", card)
                ),
            )
            for card in deep_elements(
                driver, "tf-custom-scalar-multi-line-chart-card", view
            )
        ]
        categories.append((names[0], charts))
    return categories


def hparams_table(driver):
    """(header, rows) of the HParams dashboard's table view."""
    grids = deep_elements(driver, "vaadin-grid.session-group-table")
    if not grids:
        return [], []
    header = driver.execute_script(_GRID_ROWS, grids[0], "thead")
    rows = driver.execute_script(_GRID_ROWS, grids[0], "tbody")
    return (header[0] if header else []), rows


def time_series_groups(driver):
    """The Time Series dashboard's tag groups (one per tag prefix), in page
    order, without the "Pinned" group."""
    return [
        title
        for title in deep_texts(driver, "metrics-dashboard span.group-title")
        if title != "Pinned"
    ]


def image_cards(driver):
    """[(tag, run, description, width of the loaded image or 0)] for every
    card of the Images dashboard."""
    cards = []
    for card in deep_elements(driver, "tf-image-loader"):
        images = deep_elements(driver, "img", card)
        width = (
            driver.execute_script(
                "return arguments[0].complete ? arguments[0].naturalWidth : 0;",
                images[0],
            )
            if images
            else 0
        )
        cards.append(
            (
                deep_texts(driver, "div.heading-label.name", card)[0],
                deep_texts(driver, "span.run", card)[0],
                # the description's Markdown, rendered in the card heading
                " ".join(deep_texts(driver, "p", card)),
                width,
            )
        )
    return cards


def time_series_card_counts(logdir):
    """{group: cards} that TensorBoard's Time Series dashboard makes of the
    event files below `logdir`, counted as it counts them: one card per
    scalar tag (every run's line on it), one per (run, tag) of a histogram
    or an image (one image per step here); a card's group is its tag's
    prefix before the first "/"."""
    counts = {}
    scalar_tags = set()
    for directory, _, files in os.walk(logdir):
        if not any(name.startswith("events.out.tfevents") for name in files):
            continue
        for tag, metadata in read_metadata(directory, "").items():
            plugin = metadata.plugin_data.plugin_name
            if plugin == "scalars":
                scalar_tags.add(tag)
            elif plugin in TIME_SERIES_PLUGINS:
                group = tag.split("/", 1)[0]
                counts[group] = counts.get(group, 0) + 1
    for tag in scalar_tags:
        group = tag.split("/", 1)[0]
        counts[group] = counts.get(group, 0) + 1
    return counts


_TOP_LEFT = "const b = arguments[0].getBoundingClientRect(); return [b.top, b.left];"

# Each tag group of the Time Series page: its title, the card count its
# header shows (only above one card: none is one), the top of its header
# and its card elements (none while the group is collapsed).
_TIME_SERIES_GROUPS = """
return Array.from(
  document.querySelectorAll('metrics-card-groups-component .card-group')
).map(group => {
  const count = group.querySelector('.group-card-count');
  return [
    group.querySelector('.group-title').textContent.trim(),
    count ? parseInt(count.textContent.replace(/[^0-9]/g, ''), 10) : 1,
    group.getBoundingClientRect().top,
    Array.from(group.querySelectorAll('card-view')),
  ];
});
"""

# A Time Series scalar card: its tag, the runs listed in its data table
# (one row per run drawn) and the top of the card, in viewport pixels.
_SCALAR_CARD = """
const card = arguments[0];
const path = card.querySelector('tb-truncated-path');
const runs = Array.from(card.querySelectorAll('tb-data-table-content-row')).map(
  row => Array.from(row.querySelectorAll('.cell'))
    .map(cell => cell.textContent.trim()).find(text => text !== '')
);
return [path ? path.title : '', runs, card.getBoundingClientRect().top,
        card.getBoundingClientRect().left];
"""


def time_series_layout(driver):
    """[(group, cards its header counts, top of its header, [(tag, sorted
    runs of its data table, top, left) of each card shown])] of the Time
    Series page, in page order (the cards of a collapsed group are not
    shown; an expanded group shows its first page of cards)."""
    groups = []
    for title, count, top, cards in driver.execute_script(_TIME_SERIES_GROUPS):
        shown_cards = []
        for card in cards:
            tag, runs, card_top, left = driver.execute_script(_SCALAR_CARD, card)
            shown_cards.append((tag, sorted(runs), card_top, left))
        groups.append((title, count, top, shown_cards))
    return groups


def margin_charts(driver):
    """[(category title, [(chart title, sorted ["tag (run)", ...]), ...])]
    of the Custom Scalars page's margin charts, categories in page order,
    charts in reading order on the page (top to bottom, left to right)."""
    categories = []
    for view in deep_elements(driver, "tf-category-paginated-view"):
        names = deep_texts(driver, "span.category-name", view)
        if not names:
            continue
        placed = []
        for card in deep_elements(driver, "tf-custom-scalar-margin-chart-card", view):
            box = driver.execute_script(_TOP_LEFT, card)
            lines = sorted(
                " ".join(entry.split()[-2:])
                for entry in deep_texts(driver, "div.match-list-entry", card)
            )
            title = deep_texts(driver, "div.heading-label.name", card)[0]
            placed.append((box, title, lines))
        charts = [(title, lines) for _, title, lines in sorted(placed)]
        categories.append((names[0], charts))
    return categories
