"""The kind registry: every registered kind is whole (model, template, checks, routes,
selections), and config, render, contract and cost reach a kind only through it."""

from __future__ import annotations

from typing import get_args

import pytest

from cfai.config import load_platform
from cfai.contract import CHECKS_DIR
from cfai.contract.plugin import _PARAMETERS
from cfai.errors import ConfigError
from cfai.kinds import KINDS, Example, Readiness, example_for, kind_for, kind_names
from cfai.render import Templates

ACCOUNT = "0123456789abcdef0123456789abcdef"
NAMES = [k.name for k in KINDS]


def test_kind_names_are_unique_and_sorted_for_messages() -> None:
    assert len(set(NAMES)) == len(NAMES)
    assert kind_names() == tuple(sorted(NAMES))
    with pytest.raises(KeyError, match=r"no Worker kind 'video' \(known: chat, custom"):
        kind_for("video")


@pytest.mark.parametrize("name", NAMES)
def test_kind_model_is_keyed_on_its_name(name: str) -> None:
    kind = kind_for(name)
    field = kind.config.model_fields["kind"]
    assert get_args(field.annotation) == (name,) and field.default == name
    assert kind.config.model_config.get("frozen") is True
    assert kind.config.model_config.get("extra") == "forbid"


def test_declaration_accepts_exactly_the_registered_kinds() -> None:
    with pytest.raises(ConfigError) as info:
        load_platform({"account_id": ACCOUNT, "workers": {"w": {"kind": "video"}}})
    assert [str(p) for p in info.value.problems] == [
        f"workers.w: kind must be one of: {', '.join(kind_names())}"
    ]


@pytest.mark.parametrize("name", [k.name for k in KINDS if k.templated])
def test_templated_kind_is_whole(name: str) -> None:
    kind = kind_for(name)
    assert kind.template is not None
    assert (Templates.packaged().root / kind.template).is_file(), kind.template
    assert kind.routes and kind.main_route in kind.routes
    assert kind.main_route is not None and kind.main_route.method == "POST"
    assert ("GET", "/health") in {(r.method, r.path) for r in kind.routes}
    assert (kind.example.method, kind.example.path) in {(r.method, r.path) for r in kind.routes}
    for module in kind.checks:
        assert (CHECKS_DIR / module).is_file(), module


def test_custom_kind_is_the_users_code() -> None:
    custom = kind_for("custom")
    assert not custom.templated and custom.routes == () and custom.main_route is None
    assert custom.example == Example("GET", "/health")


def test_selections_are_contract_parameters_with_one_owner() -> None:
    owned = [name for k in KINDS for name in k.selections]
    assert len(owned) == len(set(owned)), owned
    assert not {"worker", "auth_worker", "rate_limited_worker"} & set(owned)
    assert set(owned) <= set(_PARAMETERS)
    assert {"chat_worker", "schema_worker", "gateway_worker", "rag_worker", "image_worker"} <= set(
        owned
    )


def test_every_check_module_belongs_to_a_kind_or_every_worker() -> None:
    named = {m for k in KINDS for m in k.checks}
    on_disk = {p.name for p in CHECKS_DIR.glob("test_*.py")}
    assert on_disk - named == {"test_worker_common.py"}


def test_readiness_accepts_its_status_or_any_answer() -> None:
    assert Readiness().accepts(200) and not Readiness().accepts(503)
    assert Readiness("/", None).accepts(404)
    assert all(k.readiness == Readiness("/health", 200) for k in KINDS if k.templated)
    # The user's own code need not serve /health (a chat app answers it from its assets
    # with 404): any HTTP answer means it runs.
    assert kind_for("custom").readiness == Readiness(None, None)


def test_example_of_an_unknown_kind_is_a_health_check() -> None:
    assert example_for("from-a-newer-cfai") == Example("GET", "/health")
    assert example_for("image").curl_extra == " -o /tmp/cfai-image.png"


def test_a_custom_worker_is_ready_on_any_answer_or_its_declared_probe() -> None:
    from cfai.kinds.custom import KIND as CUSTOM
    from cfai.kinds.custom import CustomWorkerConfig

    plain = CustomWorkerConfig(main="src/app.js")
    assert CUSTOM.readiness_of(plain) == Readiness(None, None)
    declared = CustomWorkerConfig(main="src/app.js", health_path="/ready", health_status=204)
    assert CUSTOM.readiness_of(declared) == Readiness("/ready", 204)
    chat = kind_for("chat")
    assert chat.readiness_of(chat.config()) == Readiness("/health", 200)


def test_a_health_path_that_is_no_path_is_refused_in_words() -> None:
    data = {
        "account_id": ACCOUNT,
        "workers": {"app": {"kind": "custom", "main": "a.js", "health_path": "ready?x=1"}},
    }
    with pytest.raises(ConfigError) as err:
        load_platform(data)
    assert "workers.app.health_path" in str(err.value)
    assert "a URL path starting with '/', without spaces, '?' or '#'" in str(err.value)
