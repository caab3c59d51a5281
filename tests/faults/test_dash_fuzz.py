"""Every Dash callback of the dashboard, called with values no page would send (wrong types,
junk text, forged URLs, huge numbers): a readable answer or no update, never a 500."""
from __future__ import annotations

import gc
import json
import re

import orjson
import pytest
from dash import Dash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashapp import create_app

SEARCHES = ["?tab=overview&metric=sent", "?tab=trends&metric=delivery_rate&range=7d", "?tab=compare&vs=previous_week",
            "?tab=drilldown&drill=email,bounced", "?tab=correlations&metrics=sent,delivered", "?tab=metrics",
            "?range=custom&start=0001-01-01&end=9999-12-31", "?metric=a%00b&channel=%00", "?" + "x" * 5000]
INTS = st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1)  # what JSON carries
VALUES = st.one_of(
    st.none(), st.booleans(), INTS, st.floats(allow_nan=True),
    st.text(max_size=40), st.sampled_from(SEARCHES),
    st.lists(st.one_of(INTS, st.text(max_size=5), st.none()), max_size=4),
    st.dictionaries(st.text(max_size=8), st.one_of(INTS, st.text(max_size=8), st.none(),
                                                    st.lists(st.dictionaries(st.text(max_size=6), INTS,
                                                                             max_size=3), max_size=2)), max_size=4),
)


@pytest.fixture(scope="module")
def dashboard(pg_url):
    from tests.conftest import fresh_engine

    engine = fresh_engine(pg_url)
    app = create_app({"DATABASE_URL": pg_url, "RATE_LIMIT": "off"})
    dash_app = next(o for o in gc.get_objects() if isinstance(o, Dash) and o.server is app)
    yield app, {key: spec for key, spec in dash_app.callback_map.items() if "callback" in spec}, \
        [key for key, spec in dash_app.callback_map.items() if "callback" not in spec]  # the server's, the browser's
    engine.dispose()


def concrete(component_id: str):
    """A pattern id with its wildcards filled in, and whether it stands for a list (ALL)."""
    if not component_id.startswith("{"):
        return component_id, False
    pattern = json.loads(component_id)
    many = any(v == ["ALL"] for v in pattern.values())
    return {k: ("k1" if isinstance(v, list) else v) for k, v in pattern.items()}, many


def outputs_of(key: str) -> list[dict]:
    key = re.sub(r"@[0-9a-f]{64}", "", key)
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    out = []
    for part in parts:
        component_id, prop = part.rsplit(".", 1)
        out.append({"id": concrete(component_id)[0], "property": prop})
    return out


def argument(spec: dict, value) -> dict | list:
    component_id, many = concrete(spec["id"])
    item = {"id": component_id, "property": spec["property"], "value": value}
    return [item] if many else item


def prop_id(spec: dict) -> str:
    component_id, _ = concrete(spec["id"])
    text = component_id if isinstance(component_id, str) else json.dumps(component_id, sort_keys=True,
                                                                         separators=(",", ":"))
    return f"{text}.{spec['property']}"


CALLBACKS = 55  # checked below: a new callback must be added to the fuzz by being counted here


def test_every_callback_is_fuzzed(dashboard):
    assert len(dashboard[1]) == CALLBACKS


@pytest.mark.parametrize("index", range(CALLBACKS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_callback_fed_junk_never_answers_500(dashboard, index, data):
    app, callback_map, _ = dashboard
    key = sorted(callback_map)[index]
    spec = callback_map[key]
    outputs = outputs_of(key)
    inputs = [argument(s, data.draw(VALUES)) for s in spec["inputs"]]
    state = [argument(s, data.draw(VALUES)) for s in spec["state"]]
    body = {"output": key, "outputs": outputs if len(outputs) > 1 or key.startswith("..") else outputs[0],
            "inputs": inputs, "state": state, "changedPropIds": [prop_id(spec["inputs"][0])]}
    response = app.test_client().post("/analytics/_dash-update-component", data=orjson.dumps(body),
                                      content_type="application/json")
    assert response.status_code in (200, 204, 400), (key, body, response.status_code, response.data[:500])


def test_a_callback_that_runs_in_the_browser_is_refused_by_the_server(dashboard):
    """A clientside callback is in Dash's callback map but has no function on the server: a
    request naming it is the client's mistake (400), not an error of ours (it was a 500)."""
    app, _, clientside = dashboard
    assert clientside  # the address bar's (callbacks.shell)
    for key in clientside:
        body = {"output": key, "outputs": [], "inputs": [{"id": "address", "property": "data", "value": "?x"}],
                "state": [], "changedPropIds": ["address.data"]}
        response = app.test_client().post("/analytics/_dash-update-component", data=orjson.dumps(body),
                                          content_type="application/json")
        assert response.status_code == 400, (key, response.status_code, response.data[:300])
        assert b"names no callback of this dashboard" in response.data
