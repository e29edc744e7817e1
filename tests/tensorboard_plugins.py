"""TensorBoard's own plugins, reading real log directories as the server does.

The plugins are built on the data provider `tensorboard --load_fast=false`
uses (an EventMultiplexer over every run under the log directory, with the
server's default samples per plugin), so what a test reads is what the
dashboards receive from their HTTP routes.
"""

import json

from tensorboard import context
from tensorboard.backend.event_processing import (
    data_ingester,
    data_provider,
    plugin_event_multiplexer,
)
from tensorboard.plugins import base_plugin
from tensorboard.plugins.custom_scalar import custom_scalars_plugin
from tensorboard.plugins.hparams import (
    api_pb2,
    get_experiment,
    hparams_plugin,
    list_session_groups,
)
from tensorboard.plugins.scalar import scalars_plugin

REQUEST = context.RequestContext()
EXPERIMENT = ""


def plugins(logdir):
    """{plugin name: plugin instance} over `logdir`, loaded once."""
    logdir = str(logdir)
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance=dict(data_ingester.DEFAULT_TENSOR_SIZE_GUIDANCE)
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    instances = {}
    tb_context = base_plugin.TBContext(
        logdir=logdir,
        data_provider=data_provider.MultiplexerDataProvider(multiplexer, logdir),
        multiplexer=multiplexer,
        plugin_name_to_instance=instances,
    )
    for plugin_class in (
        scalars_plugin.ScalarsPlugin,
        custom_scalars_plugin.CustomScalarsPlugin,
        hparams_plugin.HParamsPlugin,
    ):
        instances[plugin_class.plugin_name] = plugin_class(tb_context)
    return instances


def _chart_tags(chart):
    if "margin" in chart:
        return [
            (series["value"], series["lower"], series["upper"])
            for series in chart["margin"]["series"]
        ]
    return chart["multiline"]["tag"]


def custom_scalars_layout(logdir):
    """The CUSTOM SCALARS layout route's answer: [(category, [(chart title,
    [tag regexes] of a line chart, or [(value, lower, upper) tags] of a
    margin chart)])]."""
    body = plugins(logdir)["custom_scalars"].layout_impl(REQUEST, EXPERIMENT)
    layout = json.loads(body) if isinstance(body, str) else body  # {} if none
    return [
        (
            category["title"],
            [(chart["title"], _chart_tags(chart)) for chart in category["chart"]],
        )
        for category in layout.get("category", [])
    ]


def chart_tags(logdir, run, regex):
    """{tag: [(step, value)]} the CUSTOM SCALARS route gives a chart's
    `regex` in `run`."""
    answer = plugins(logdir)["custom_scalars"].scalars_impl(
        REQUEST, run, regex, EXPERIMENT
    )
    return {
        tag: [(step, value) for _, step, value in events]
        for tag, events in answer["tag_to_events"].items()
    }


def _experiment(logdir):
    context_ = plugins(logdir)["hparams"]._context
    return context_, get_experiment.Handler(
        REQUEST, context_, EXPERIMENT, api_pb2.GetExperimentRequest()
    ).run()


def _heading(info):
    """A metric column's heading, as the dashboard writes it: the display
    name, else the tag (after "group." when the metric is in a subrun)."""
    if info.display_name:
        return info.display_name
    group = "" if info.name.group in ("", ".") else f"{info.name.group}."
    return group + info.name.tag


def hparams_experiment(logdir):
    """The HPARAMS dashboard's experiment: ([hparam names], {hparam name:
    discrete domain values or None}, [metric column headings])."""
    _, experiment = _experiment(logdir)
    domains = {
        info.name: [
            value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
            for value in info.domain_discrete.values
        ]
        if info.HasField("domain_discrete")
        else None
        for info in experiment.hparam_infos
    }
    return (
        [info.name for info in experiment.hparam_infos],
        domains,
        [_heading(info) for info in experiment.metric_infos],
    )


def hparams_metric_tags(logdir):
    """{metric column heading: the scalar tag its values are read from}."""
    _, experiment = _experiment(logdir)
    return {_heading(info): info.name.tag for info in experiment.metric_infos}


def hparams_table(logdir, sort_by, descending=False):
    """The HPARAMS table's rows, sorted by the metric column headed `sort_by`
    by the plugin's own session-group listing: [(trial id, {hparam: value},
    {metric column heading: value})], one row per session; the trial id is
    the session group's name, what the table's "Trial ID" column shows."""
    context_, experiment = _experiment(logdir)
    headings = {info.name.tag: _heading(info) for info in experiment.metric_infos}
    (tag,) = [tag for tag, heading in headings.items() if heading == sort_by]
    order = api_pb2.ORDER_DESC if descending else api_pb2.ORDER_ASC
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0,
        slice_size=1000,
        allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS],
        col_params=[api_pb2.ColParams(metric=api_pb2.MetricName(tag=tag), order=order)],
    )
    groups = list_session_groups.Handler(REQUEST, context_, EXPERIMENT, request).run()
    return [
        (
            group.name,
            {
                name: getattr(value, value.WhichOneof("kind"))
                for name, value in group.hparams.items()
            },
            {headings[value.name.tag]: value.value for value in session.metric_values},
        )
        for group in groups.session_groups
        for session in group.sessions
    ]
