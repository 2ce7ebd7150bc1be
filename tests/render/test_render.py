"""Renderer: golden files, determinism, hashes, bindings, files on disk, syntax."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import ACCOUNT, make_platform, render
from node_harness import node

import cfai.render
from cfai.config import PlatformConfig
from cfai.errors import ConfigError, RenderError
from cfai.render import (
    Binding,
    Templates,
    module_path,
    module_sha256,
    render_platform,
    stale_paths,
    tojs,
    worker_files,
    wrangler_config,
    write_rendered,
)

GOLDEN = Path(__file__).parent / "golden"
# What the templates read of llama-3.1-8b-instruct at run time (the MODEL_TRAITS var).
TRAITS = '{"form": "native", "reasoning": "none", "vision": "none"}'


@pytest.mark.parametrize("kind", ["chat", "rag", "image"])
def test_render_matches_golden(kind: str, fixture_platform: PlatformConfig) -> None:
    source = render(fixture_platform, kind).source
    golden = GOLDEN / f"{kind}.js"
    if os.environ.get("CFAI_UPDATE_GOLDEN") == "1":
        golden.write_bytes(source.encode("utf-8"))
    assert golden.read_bytes() == source.encode("utf-8"), (
        f"{golden} differs from the rendered {kind} Worker; review the diff and rerun with "
        "CFAI_UPDATE_GOLDEN=1 to accept it"
    )


def test_render_is_deterministic(fixture_platform: PlatformConfig) -> None:
    first = render_platform(fixture_platform, base_dir=Path("."))
    second = render_platform(make_platform(), base_dir=Path("."))
    assert [w.source for w in first] == [w.source for w in second]
    assert [w.key for w in first] == ["chat", "image", "rag"]


def test_render_same_settings_other_stack_same_code() -> None:
    staging = render_platform(make_platform(name_prefix="acme-staging"), base_dir=Path("."))
    prod = render_platform(make_platform(name_prefix="acme-prod"), base_dir=Path("."))
    for a, b in zip(staging, prod, strict=True):
        assert a.source == b.source and a.sha256 == b.sha256
        assert a.script_name == f"acme-staging-{a.key}" and b.script_name == f"acme-prod-{b.key}"
        assert a.bindings != b.bindings or a.kind == "image"


def test_render_hash_is_module_sha256(fixture_platform: PlatformConfig) -> None:
    for w in render_platform(fixture_platform, base_dir=Path(".")):
        found = re.findall(r'const TEMPLATE_SHA256 = "([0-9a-f]{64})";', w.source)
        assert found == [w.sha256]
        assert module_sha256(w.source) == w.sha256
        zeroed = w.source.replace(w.sha256, "0" * 64)
        assert hashlib.sha256(zeroed.encode()).hexdigest() == w.sha256
        # Any edit to the module changes the hash it should report.
        assert module_sha256(w.source.replace("const ", "let ", 1)) != w.sha256


@pytest.mark.parametrize("kind", ["chat", "rag", "image"])
def test_rendered_module_passes_node_check(kind: str, tmp_path: Path) -> None:
    settings = {
        "chat": {"kind": "chat", "response_schema": {"type": "object"}, "auth": False},
        "rag": {
            "kind": "rag",
            "index": "docs",
            "embedding_model": "@cf/baai/bge-small-en-v1.5",
            "pooling": "cls",
        },
        "image": {"kind": "image", "model": "@cf/black-forest-labs/flux-1-schnell", "steps": 2},
    }
    for i, platform in enumerate([make_platform(), make_platform({kind: settings[kind]})]):
        module = tmp_path / f"{kind}{i}.mjs"
        module.write_text(render(platform, kind).source, encoding="utf-8")
        proc = subprocess.run([node(), "--check", str(module)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_render_bindings_carry_environment_values(fixture_platform: PlatformConfig) -> None:
    rag = render(fixture_platform, "rag")
    assert rag.bindings == (
        Binding("ai", "AI"),
        Binding("secret_text", "AUTH_TOKEN"),
        Binding("plain_text", "CHUNK_OVERLAP", text="16"),
        Binding("plain_text", "CHUNK_SIZE", text="64"),
        Binding("plain_text", "DIMENSIONS", text="384"),
        Binding("plain_text", "EMBEDDING_MODEL", text="@cf/baai/bge-small-en-v1.5"),
        Binding("plain_text", "EMBED_BATCH", text="100"),
        Binding("plain_text", "GATEWAY_ID", text="golden-main"),
        Binding("plain_text", "MAX_TOKENS", text="256"),
        Binding("plain_text", "MODEL", text="@cf/meta/llama-3.1-8b-instruct"),
        Binding("plain_text", "MODEL_TRAITS", text=TRAITS),
        Binding("plain_text", "POOLING", text="mean"),
        Binding(
            "plain_text",
            "SYSTEM_PROMPT",
            text="Answer the question using only the context. Say so when the context does not "
            "contain the answer.",
        ),
        Binding("plain_text", "TEMPERATURE", text="0.6"),
        Binding("plain_text", "TOP_K", text="2"),
        Binding("vectorize", "VECTORIZE", index_name="golden-docs"),
    )
    assert rag.gateway == "golden-main" and rag.auth and rag.kind == "rag"
    assert rag.models == ("@cf/meta/llama-3.1-8b-instruct", "@cf/baai/bge-small-en-v1.5")
    assert "golden-docs" not in rag.source and "golden-main" not in rag.source
    image = render(fixture_platform, "image")
    assert {b.name for b in image.bindings} == {"AI", "AUTH_TOKEN", "IMAGE", "MODEL"}
    limits = json.loads(next(b.text or "" for b in image.bindings if b.name == "IMAGE"))
    assert (limits["max_width"], limits["max_height"], limits["sizable"]) == (1024, 768, True)
    assert image.gateway is None
    assert Binding("vectorize", "V", index_name="x").as_dict() == {
        "type": "vectorize",
        "name": "V",
        "index_name": "x",
    }
    assert Binding("secret_text", "AUTH_TOKEN").as_dict() == {
        "type": "secret_text",
        "name": "AUTH_TOKEN",
    }


def test_render_compatibility_from_worker_or_platform() -> None:
    platform = make_platform(
        {
            "a": {"kind": "image"},
            "b": {
                "kind": "image",
                "compatibility_date": "2026-01-01",
                "compatibility_flags": ["x"],
            },
        },
        compatibility_flags=["nodejs_compat"],
    )
    a, b = render(platform, "a"), render(platform, "b")
    assert (a.compatibility_date, a.compatibility_flags) == ("2025-09-01", ("nodejs_compat",))
    assert (b.compatibility_date, b.compatibility_flags) == ("2026-01-01", ("x",))


def test_render_custom_worker_byte_for_byte(tmp_path: Path) -> None:
    raw = "// legacy\r\nexport default { fetch() { return new Response('h\u00e9'); } };\r\n"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "legacy.js").write_bytes(raw.encode())
    platform = make_platform(
        {
            "legacy": {
                "kind": "custom",
                "main": "src/legacy.js",
                "bindings": {
                    "ai": "MY_AI",
                    "vectorize": {"binding": "IDX", "index": "docs"},
                    "gateway": {"binding": "GW", "gateway": "main"},
                    "vars": {"MODE": "prod"},
                    "auth_token": "SECRET",
                },
            }
        }
    )
    w = render(platform, "legacy", base_dir=tmp_path)
    assert w.source.encode() == raw.encode()
    assert w.sha256 == hashlib.sha256(raw.encode()).hexdigest() == module_sha256(w.source)
    assert w.models == () and w.gateway == "golden-main" and w.kind == "custom"
    assert {b.name: b.as_dict() for b in w.bindings} == {
        "GW": {"type": "plain_text", "name": "GW", "text": "golden-main"},
        "IDX": {"type": "vectorize", "name": "IDX", "index_name": "golden-docs"},
        "MODE": {"type": "plain_text", "name": "MODE", "text": "prod"},
        "MY_AI": {"type": "ai", "name": "MY_AI"},
        "SECRET": {"type": "secret_text", "name": "SECRET"},
    }
    written = write_rendered({"golden": [w]}, tmp_path / "out")
    assert (tmp_path / "out" / "legacy" / "index.js").read_bytes() == raw.encode()
    assert len(written) == 2
    (files,) = worker_files({"golden": [w]})
    config = wrangler_config(files)
    assert "wrangler secret put SECRET --env golden" in config
    assert json.loads(_strip_comments(config))["env"]["golden"]["ai"] == {"binding": "MY_AI"}


def test_render_custom_worker_missing_or_not_utf8(tmp_path: Path) -> None:
    platform = make_platform({"legacy": {"kind": "custom", "main": "legacy.js"}})
    with pytest.raises(ConfigError, match=r"workers\.legacy\.main: file 'legacy.js' not found"):
        render(platform, "legacy", base_dir=tmp_path)
    (tmp_path / "legacy.js").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        render(platform, "legacy", base_dir=tmp_path)


def _strip_comments(jsonc: str) -> str:
    return "\n".join(line for line in jsonc.splitlines() if not line.startswith("//"))


def test_wrangler_config_has_an_env_per_stack(fixture_platform: PlatformConfig) -> None:
    rag = render(fixture_platform, "rag")
    prod = render(make_platform(name_prefix="prod"), "rag")
    (files,) = worker_files({"golden": [rag], "prod": [prod]})
    text = wrangler_config(files)
    assert text.endswith("}\n")
    assert "generated by `cfai render`" in text.lower()
    assert "wrangler secret put AUTH_TOKEN --env golden" in text
    assert "wrangler secret put AUTH_TOKEN --env prod" in text
    settings = {
        "CHUNK_OVERLAP": "16",
        "CHUNK_SIZE": "64",
        "EMBED_BATCH": "100",
        "MAX_TOKENS": "256",
        "POOLING": "mean",
        "SYSTEM_PROMPT": "Answer the question using only the context. Say so when the context "
        "does not contain the answer.",
        "TEMPERATURE": "0.6",
        "TOP_K": "2",
        "DIMENSIONS": "384",
    }

    def env(prefix: str) -> dict[str, object]:
        return {
            "name": f"{prefix}-rag",
            "account_id": ACCOUNT,
            "compatibility_date": "2025-09-01",
            "compatibility_flags": [],
            "workers_dev": True,
            "ai": {"binding": "AI"},
            "vectorize": [{"binding": "VECTORIZE", "index_name": f"{prefix}-docs"}],
            "vars": {
                **settings,
                "EMBEDDING_MODEL": "@cf/baai/bge-small-en-v1.5",
                "GATEWAY_ID": f"{prefix}-main",
                "MODEL": "@cf/meta/llama-3.1-8b-instruct",
                "MODEL_TRAITS": TRAITS,
            },
        }

    # Wrangler inherits no vars or bindings into an env, so each env is complete; the top
    # level has no compatibility_date, so `wrangler deploy` without --env stops.
    assert json.loads(_strip_comments(text)) == {
        "name": "rag",
        "main": "index.js",
        "no_bundle": True,
        "env": {"golden": env("golden"), "prod": env("prod")},
    }
    assert "AUTH_TOKEN" not in json.loads(_strip_comments(text))["env"]["prod"]["vars"]


def test_write_rendered_then_stale_paths(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    workers = {"golden": render_platform(fixture_platform, base_dir=Path("."))}
    out = tmp_path / "workers"
    assert len(stale_paths(workers, out)) == 6
    changed = write_rendered(workers, out)
    assert sorted(p.relative_to(out).as_posix() for p in changed) == [
        f"{k}/{f}" for k in ("chat", "image", "rag") for f in ("index.js", "wrangler.jsonc")
    ]
    assert stale_paths(workers, out) == []
    assert write_rendered(workers, out) == []  # byte-stable: nothing to rewrite
    (out / "chat" / "index.js").write_text("// edited\n")
    (out / "rag" / "wrangler.jsonc").unlink()
    assert stale_paths(workers, out) == [
        str(out / "chat" / "index.js"),
        str(out / "rag" / "wrangler.jsonc"),
    ]
    assert module_path(out, "chat") == out / "chat" / "index.js"
    # Another stack shares the modules: only its env is missing from each wrangler.jsonc.
    write_rendered(workers, out)
    prod = {"prod": render_platform(make_platform(name_prefix="prod"), base_dir=Path("."))}
    assert (
        stale_paths(prod, out)
        == stale_paths(prod, out, every_stack=False)
        == [str(out / k / "wrangler.jsonc") for k in ("chat", "image", "rag")]
    )
    assert (
        sorted(p.name for p in write_rendered(prod, out, every_stack=False))
        == ["wrangler.jsonc"] * 3
    )
    both = {**workers, **prod}
    assert stale_paths(both, out) == []
    assert stale_paths(workers, out, every_stack=False) == []
    # As every stack, golden alone is stale: its files also hold prod's env.
    assert len(stale_paths(workers, out)) == 3


def test_tojs_escapes_what_breaks_js_or_html() -> None:
    assert tojs("</script>") == '"\\u003c/script>"'
    assert tojs("a\u2028b\u2029c") == '"a\\u2028b\\u2029c"'
    assert tojs({"b": 1, "a": "é"}) == '{"a": "é", "b": 1}'
    with pytest.raises(RenderError):
        tojs(float("nan"))


def test_template_printing_raw_value_is_refused(tmp_path: Path) -> None:
    (tmp_path / "raw.j2").write_text("const X = {{ value }};")
    (tmp_path / "safe.j2").write_text("const X = {{ value | tojs }};")
    templates = Templates(tmp_path)
    with pytest.raises(RenderError, match=r"\| tojs"):
        templates.render("raw.j2", {"value": "hi"})
    assert templates.render("safe.j2", {"value": "hi"}) == 'const X = "hi";'


def test_render_public_names() -> None:
    assert sorted(cfai.render.__all__) == [
        "Binding",
        "PLAYGROUND_DIR",
        "RenderedWorker",
        "Templates",
        "VAR_MAX_BYTES",
        "WorkerFiles",
        "module_path",
        "module_sha256",
        "render_platform",
        "render_worker",
        "setting_text",
        "stale_paths",
        "tojs",
        "version_digest",
        "worker_files",
        "wrangler_config",
        "write_rendered",
    ]
