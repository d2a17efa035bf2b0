"""deploy/grafana/lensfind.json and the alert rules query only metrics that lensfind exports.

The checker extracts the metric names of a PromQL expression (identifiers that are not
functions, aggregation operators, keywords, label names in ``{...}`` or in
``by/without/on/ignoring/group_left/group_right (...)``, durations or numbers) and compares them
with ``lensfind.engine.metrics.METRIC_NAMES`` (plus the ``_bucket``/``_sum``/``_count`` series of
its histograms) and an explicit allow-list of metrics that others export.
"""

import json
import re

import pytest
import yaml

from lensfind.engine.metrics import METRIC_NAMES, ScanMetrics

#: Metrics of other exporters that the dashboard and the alerts may use.
EXTERNAL_METRICS = frozenset({"DCGM_FI_DEV_GPU_UTIL"})

#: PromQL functions: identifiers followed by "(" that are not metric names.
FUNCTIONS = frozenset(
    """abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
    clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
    days_in_month deg delta deriv double_exponential_smoothing exp floor histogram_avg
    histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
    histogram_sum holt_winters hour idelta increase info irate label_join label_replace
    last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi
    predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin
    sinh sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time stdvar_over_time
    sum_over_time tan tanh time timestamp vector year""".split()
)

#: Aggregation operators and keywords (case-insensitive in PromQL).
KEYWORDS = frozenset(
    """sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk
    limit_ratio and or unless atan2 by without on ignoring group_left group_right bool offset
    start end inf nan""".split()
)

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
# An identifier that does not continue a number (10m, 1e3, 0x1f) or another name.
_IDENT = re.compile(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names that a PromQL expression (Grafana variables allowed) selects."""
    s = _STRING.sub(" ", expr)
    s = _GRAFANA_VARIABLE.sub(" ", s)
    s = _MATCHERS.sub(" ", s)
    s = _RANGE.sub(" ", s)
    s = _GROUPING.sub(" ", s)
    names = set()
    for m in _IDENT.finditer(s):
        token = m.group()
        if token.lower() in KEYWORDS:
            continue
        if token in FUNCTIONS and re.match(r"\s*\(", s[m.end() :]):
            continue
        names.add(token)
    return names


def allowed_metric_names() -> frozenset[str]:
    registry = ScanMetrics(survey="des_y3", model_sha256="0" * 64).registry
    histograms = {f.name for f in registry.collect() if f.type == "histogram"}
    assert histograms and histograms <= METRIC_NAMES
    series = {h + suffix for h in histograms for suffix in ("_bucket", "_sum", "_count")}
    return frozenset(METRIC_NAMES | series | EXTERNAL_METRICS)


def unknown_metrics(expr: str) -> set[str]:
    return metric_names(expr) - allowed_metric_names()


def _walk(panels):
    for panel in panels:
        yield panel
        yield from _walk(panel.get("panels", []))


@pytest.fixture(scope="module")
def dashboard(deploy_dir):
    return json.loads((deploy_dir / "grafana" / "lensfind.json").read_text())


@pytest.fixture(scope="module")
def panels(dashboard):
    return [p for p in _walk(dashboard["panels"]) if p["type"] != "row"]


@pytest.fixture(scope="module")
def alert_rules(deploy_dir):
    rules = yaml.safe_load((deploy_dir / "prometheus" / "alerts.yml").read_text())
    return [r for g in rules["groups"] for r in g["rules"]]


# --- the checker itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, names",
    [
        (
            "histogram_quantile(0.95, sum by (le, stage) (rate(lensfind_stage_duration_seconds_"
            'bucket{instance=~"$instance", stage="read"}[$__rate_interval])))',
            {"lensfind_stage_duration_seconds_bucket"},
        ),
        (
            "time() - lensfind_last_commit_timestamp_seconds offset 10m > 600 "
            "and on (job, instance) up == bool 1",
            {"lensfind_last_commit_timestamp_seconds", "up"},
        ),
        ('label_replace(foo_total, "dst", "$1", "src", "(.*)")', {"foo_total"}),
        (
            "sum without (instance) (rate(job:requests:rate5m[1h30m])) * 1e3",
            {"job:requests:rate5m"},
        ),
        ("SUM(a) BY (b) / ignoring(c) group_left(d) e", {"a", "e"}),
        ("rate", {"rate"}),  # a metric that is called like a function, not a call
        ("(x or vector(0)) / sum(y @ start())", {"x", "y"}),
    ],
)
def test_metric_names(expr, names):
    assert metric_names(expr) == names


def test_checker_flags_a_made_up_metric():
    expr = 'sum(rate(lensfind_cutouts_scord_total{status="scored"}[5m])) / sum(up)'
    assert unknown_metrics(expr) == {"lensfind_cutouts_scord_total", "up"}
    assert unknown_metrics("lensfind_objects") == {"lensfind_objects"}  # the counter needs _total
    assert unknown_metrics("lensfind_scan_objects_bucket") == {"lensfind_scan_objects_bucket"}
    assert unknown_metrics("rate(lensfind_score_batch_size_count[1m])") == set()


# --- the dashboard ---------------------------------------------------------------------------


def test_dashboard_identity(dashboard):
    assert dashboard["uid"] == "lensfind"
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in _walk(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_panel_has_a_query(dashboard, panels):
    nested = [p for row in dashboard["panels"] if row["type"] == "row" for p in row["panels"]]
    assert nested, "expected a collapsed row with nested panels"
    empty = [p["title"] for p in panels if not [t for t in p.get("targets", []) if t.get("expr")]]
    assert empty == []
    for p in panels:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]


def test_dashboard_queries_use_exported_metrics(panels):
    unknown = {
        (p["title"], t["refId"]): sorted(unknown_metrics(t["expr"]))
        for p in panels
        for t in p["targets"]
        if unknown_metrics(t["expr"])
    }
    assert unknown == {}


def test_dashboard_shows_every_metric_family(panels):
    used = set().union(*(metric_names(t["expr"]) for p in panels for t in p["targets"]))
    used = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used} | used
    assert sorted(METRIC_NAMES - used) == []
    assert "DCGM_FI_DEV_GPU_UTIL" in used


def test_alert_rules_use_exported_metrics(alert_rules):
    unknown = {r["alert"]: sorted(unknown_metrics(r["expr"])) for r in alert_rules}
    assert unknown == {r["alert"]: [] for r in alert_rules}
    assert all(metric_names(r["expr"]) for r in alert_rules)
