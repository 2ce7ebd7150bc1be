"""One ``workers/<key>/`` per Worker: the same module in every stack, settings as vars, a
wrangler env per stack; two stacks that would need different code fail by name."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import TOKEN, env_for, make_platform, render
from node_harness import request, run_worker

from cfai.errors import ConfigError
from cfai.render import (
    VAR_MAX_BYTES,
    module_sha256,
    render_platform,
    stale_paths,
    worker_files,
    write_rendered,
)

REPO = Path(__file__).resolve().parents[2]
SMALL = "@cf/baai/bge-small-en-v1.5"  # the fixture index's dimensions
LONG_PROMPT = "Answer in the voice of a patient teacher. " * 200  # ~8.6 KB: over a var's 5 KB


def _without_comments(jsonc: str) -> str:
    return "\n".join(line for line in jsonc.splitlines() if not line.startswith("//"))


def _vars(worker_bindings: object) -> dict[str, str]:
    return {b.name: b.text or "" for b in worker_bindings if b.type == "plain_text"}  # type: ignore[attr-defined]


def test_other_settings_other_stack_same_module_and_hash() -> None:
    staging = make_platform(
        {"a": {"kind": "chat", "max_tokens": 64, "temperature": 0.2, "system_prompt": "Be brief."}},
        name_prefix="acme-staging",
    )
    prod = make_platform(
        {
            "a": {
                "kind": "chat",
                "model": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
                "max_tokens": 512,
                "stream": True,
                "response_schema": None,
            }
        },
        name_prefix="acme-prod",
    )
    a, b = render(staging, "a"), render(prod, "a")
    assert a.source == b.source and a.sha256 == b.sha256
    assert (_vars(a.bindings)["MAX_TOKENS"], _vars(b.bindings)["MAX_TOKENS"]) == ("64", "512")
    assert (_vars(a.bindings)["SYSTEM_PROMPT"], _vars(b.bindings)["SYSTEM_PROMPT"]) == (
        "Be brief.",
        "",
    )
    assert (_vars(a.bindings)["STREAM"], _vars(b.bindings)["STREAM"]) == ("false", "true")
    assert "Be brief." not in a.source and "512" not in b.source
    (files,) = worker_files({"staging": [a], "prod": [b]})
    assert (files.key, files.sha256, sorted(files.stacks)) == ("a", a.sha256, ["prod", "staging"])


@pytest.mark.parametrize(
    ("staging", "prod", "said"),
    [
        ({"kind": "chat"}, {"kind": "image"}, "kind 'image' in prod, 'chat' in staging"),
        (
            {"kind": "chat", "auth": False},
            {"kind": "chat"},
            "auth 'true' in prod, 'false' in staging",
        ),
        (
            {"kind": "rag", "index": "docs", "embedding_model": SMALL, "max_request_bytes": 4096},
            {"kind": "rag", "index": "docs", "embedding_model": SMALL},
            "max_request_bytes '1048576' in prod, '4096' in staging",
        ),
        (
            {"kind": "chat", "system_prompt": LONG_PROMPT},
            {"kind": "chat", "system_prompt": LONG_PROMPT + "!"},
            "SYSTEM_PROMPT 'Answer in the voice of a patie'... (8401 bytes) in prod, "
            "'Answer in the voice of a patie'... (8400 bytes) in staging",
        ),
    ],
)
def test_two_stacks_needing_different_code_fail_naming_key_stacks_and_setting(
    staging: dict[str, object], prod: dict[str, object], said: str
) -> None:
    stacks = {
        "staging": render_platform(make_platform({"w": staging}), base_dir=Path(".")),
        "prod": render_platform(make_platform({"w": prod}, name_prefix="p"), base_dir=Path(".")),
    }
    with pytest.raises(ConfigError) as err:
        worker_files(stacks)
    message = str(err.value)
    assert "\n  workers.w: stacks prod and staging render different code" in message
    assert said in message, message
    assert "workers/w/ holds one module for every stack" in message


def test_custom_worker_from_other_files_in_two_stacks_fails_naming_main(tmp_path: Path) -> None:
    for name in ("a.js", "b.js"):
        (tmp_path / name).write_text(f"// {name}\nexport default {{ fetch() {{}} }};\n")
    stacks = {
        stack: render_platform(
            make_platform({"edge": {"kind": "custom", "main": main}}), base_dir=tmp_path
        )
        for stack, main in (("staging", "a.js"), ("prod", "b.js"))
    }
    with pytest.raises(
        ConfigError, match=r"workers\.edge: .*main 'b\.js' in prod, 'a\.js' in staging"
    ):
        write_rendered(stacks, tmp_path / "workers")
    assert not (tmp_path / "workers").exists()


def test_a_setting_too_large_for_a_var_is_built_in_and_still_reaches_the_model(
    tmp_path: Path,
) -> None:
    assert len(LONG_PROMPT.encode()) > VAR_MAX_BYTES
    platform = make_platform({"a": {"kind": "chat", "system_prompt": LONG_PROMPT}})
    worker = render(platform, "a")
    assert "SYSTEM_PROMPT" not in _vars(worker.bindings)
    assert all(len(t.encode()) <= VAR_MAX_BYTES for t in _vars(worker.bindings).values())
    assert LONG_PROMPT in worker.source and module_sha256(worker.source) == worker.sha256
    replies, calls = run_worker(
        tmp_path,
        worker.source,
        {
            "env": env_for(worker),
            "requests": [request("POST", "/chat", {"prompt": "hi"}, token=TOKEN)],
        },
    )
    assert replies[0].status == 200, replies[0].body
    assert calls["ai"][0]["inputs"]["messages"][0] == {"role": "system", "content": LONG_PROMPT}
    # The same long prompt in two stacks is the same code.
    other = render(
        make_platform({"a": {"kind": "chat", "system_prompt": LONG_PROMPT}}, name_prefix="p"), "a"
    )
    assert worker_files({"s": [worker], "p": [other]})[0].sha256 == worker.sha256


@pytest.mark.parametrize(
    ("kind", "var", "value", "message"),
    [
        ("chat", "MAX_TOKENS", None, "the Worker's MAX_TOKENS var is not set"),
        ("chat", "TEMPERATURE", "warm", "the Worker's TEMPERATURE var must be a number from 0"),
        ("chat", "STREAM", "yes", "the Worker's STREAM var must be true or false"),
        ("chat", "RESPONSE_SCHEMA", "{", "the Worker's RESPONSE_SCHEMA var is not valid JSON"),
        ("rag", "TOP_K", "3.5", "the Worker's TOP_K var must be an integer"),
        ("rag", "POOLING", "max", "the Worker's POOLING var must be mean or cls"),
        (
            "image",
            "IMAGE",
            "[]",
            "the Worker's IMAGE var must be a JSON object of the model's limits",
        ),
    ],
)
def test_a_missing_or_malformed_setting_var_is_a_500_naming_it_not_a_crash(
    tmp_path: Path, kind: str, var: str, value: str | None, message: str
) -> None:
    settings = {
        "chat": {"kind": "chat"},
        "rag": {"kind": "rag", "index": "docs", "embedding_model": SMALL},
        "image": {"kind": "image"},
    }
    worker = render(make_platform({"w": settings[kind]}), "w")
    env = env_for(worker)
    if value is None:
        env.pop(var)
    else:
        env[var] = value
    route, body = {
        "chat": ("/chat", {"prompt": "hi"}),
        "rag": ("/query", {"question": "q"}),
        "image": ("/image", {"prompt": "p"}),
    }[kind]
    replies, calls = run_worker(
        tmp_path,
        worker.source,
        {
            "env": env,
            "requests": [
                request("GET", "/health"),
                request("POST", route, body),  # no token: auth comes before settings
                request("POST", route, body, token=TOKEN),
            ],
        },
    )
    assert [r.status for r in replies] == [200, 401, 500]
    assert replies[2].json() == {"error": {"code": "internal_error", "message": message}}
    assert calls["ai"] == []


def test_render_for_one_stack_keeps_the_other_stacks_envs(tmp_path: Path) -> None:
    out = tmp_path / "workers"
    staging = {"staging": render_platform(make_platform(name_prefix="s"), base_dir=Path("."))}
    prod = {"prod": render_platform(make_platform(name_prefix="p"), base_dir=Path("."))}
    write_rendered({**staging, **prod}, out)
    before = (out / "chat" / "index.js").read_bytes()
    # Re-rendering one stack changes nothing when it is fresh...
    assert write_rendered(staging, out, every_stack=False) == []
    # ...and a setting changed in it rewrites only the files of that Worker.
    edited = {
        "staging": render_platform(
            make_platform(name_prefix="s", compatibility_date="2026-01-01"), base_dir=Path(".")
        )
    }
    changed = write_rendered(edited, out, every_stack=False)
    assert sorted(p.relative_to(out).as_posix() for p in changed) == [
        "chat/wrangler.jsonc",
        "image/wrangler.jsonc",
        "rag/wrangler.jsonc",
    ]
    config = json.loads(_without_comments((out / "chat" / "wrangler.jsonc").read_text()))
    assert config["env"]["staging"]["compatibility_date"] == "2026-01-01"
    assert config["env"]["prod"]["compatibility_date"] == "2025-09-01"
    assert stale_paths({**edited, **prod}, out) == []
    assert (out / "chat" / "index.js").read_bytes() == before


def test_render_for_one_stack_refuses_to_change_code_other_stacks_serve(tmp_path: Path) -> None:
    out = tmp_path / "workers"
    write_rendered(
        {
            "staging": render_platform(make_platform({"w": {"kind": "chat"}}), base_dir=Path(".")),
            "prod": render_platform(
                make_platform({"w": {"kind": "chat"}}, name_prefix="p"), base_dir=Path(".")
            ),
        },
        out,
    )
    module = out / "w" / "index.js"
    before = module.read_bytes()
    other = {
        "staging": render_platform(
            make_platform({"w": {"kind": "chat", "auth": False}}), base_dir=Path(".")
        )
    }
    with pytest.raises(
        ConfigError, match=r"also serves stack\(s\) prod.*render every stack together"
    ):
        write_rendered(other, out, every_stack=False)
    assert module.read_bytes() == before


def _wrangler(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WRANGLER_SEND_METRICS": "false", "CI": "true", "NO_COLOR": "1"}
    env["XDG_CONFIG_HOME"] = str(cwd.parent / "xdg")  # wrangler's logs, not the user's home
    return subprocess.run(
        [str(REPO / "node_modules" / ".bin" / "wrangler"), "deploy", "--dry-run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_wrangler_deploys_each_stack_of_the_committed_tree_with_its_vars(tmp_path: Path) -> None:
    # A copy: wrangler writes .wrangler/ beside its config.
    kb = tmp_path / "kb"
    kb.mkdir()
    for name in ("index.js", "wrangler.jsonc"):
        (kb / name).write_bytes((REPO / "workers" / "kb" / name).read_bytes())
    out = tmp_path / "out"
    done = _wrangler(kb, "--env", "prod", "--outdir", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "env.VECTORIZE (acme-prod-docs)" in done.stdout
    assert 'env.TOP_K ("5")' in done.stdout and 'env.GATEWAY_ID ("acme-prod-main")' in done.stdout
    # no_bundle: wrangler uploads the reviewed bytes as they are.
    assert (out / "index.js").read_bytes() == (kb / "index.js").read_bytes()
    # Without --env it stops: the top level is no deployable stack.
    bare = _wrangler(kb, "--outdir", str(tmp_path / "bare"))
    assert bare.returncode != 0
    assert "compatibility_date" in bare.stdout + bare.stderr


def test_render_removes_what_it_wrote_for_workers_no_stack_declares(tmp_path: Path) -> None:
    out = tmp_path / "workers"
    staging = {"staging": render_platform(make_platform(name_prefix="s"), base_dir=Path("."))}
    # The layout before this one: a directory per script, as `cfai render` wrote it.
    old = out / "acme-staging-chat"
    old.mkdir(parents=True)
    (old / "index.js").write_text("// old\n")
    (old / "wrangler.jsonc").write_text('// Generated by `cfai render` for Worker "chat"; x\n{}\n')
    # A directory with a file of the user's own is not cfai's to remove.
    mine = out / "notes"
    mine.mkdir()
    (mine / "wrangler.jsonc").write_text('// Generated by `cfai render` for Worker "n"; x\n{}\n')
    (mine / "README.md").write_text("mine\n")
    assert str(old) in stale_paths(staging, out)
    assert str(old) not in stale_paths(staging, out, every_stack=False)
    changed = write_rendered(staging, out)
    assert {old / "index.js", old / "wrangler.jsonc"} <= set(changed)
    assert not old.exists() and (mine / "README.md").is_file()
    assert stale_paths(staging, out) == []
