"""Hostile strings in every free-text config field reach Workers AI byte-for-byte.

Each rendered module is imported in Node with stub bindings and called through its `fetch`;
what the stub `env.AI.run` received is compared with the configured value in Python.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

from conftest import TOKEN, env_for, make_platform, render
from node_harness import node, request, run_worker

from cfai.render import module_sha256, tojs, worker_files, wrangler_config

HOSTILE = (
    "Say \"hi\" & 'bye' \\ back\\\\slash `tick` ${x} ${`${y}`} </script><script>alert(1)</script>"
    " <!-- --> */ /* \u2028LS\u2029PS \n\r\t NUL\x00 é 日本語 🎉 \ufeff \u200b \\u2028 {{ raw }} {% x %}"
)
KEY = "h0stile_key-1"  # worker keys allow only [a-z0-9_-]; the hostile part is in values


def test_hostile_system_prompt_and_schema_reach_the_model(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "description": HOSTILE,
        "properties": {HOSTILE: {"type": "string", "enum": [HOSTILE, "</script>", "\u2028"]}},
    }
    platform = make_platform(
        {KEY: {"kind": "chat", "system_prompt": HOSTILE, "response_schema": schema}}
    )
    worker = render(platform, KEY)
    assert "</script>" not in worker.source and "\u2028" not in worker.source
    # The prompt and schema travel as vars: wrangler.jsonc carries them exactly, escaped.
    (files,) = worker_files({"golden": [worker]})
    config = wrangler_config(files)
    assert "\u2028" not in config and "\u2029" not in config
    body = "\n".join(line for line in config.split("\n") if not line.startswith("//"))
    settings = json.loads(body)["env"]["golden"]["vars"]
    assert settings["SYSTEM_PROMPT"] == HOSTILE
    assert json.loads(settings["RESPONSE_SCHEMA"]) == schema
    replies, calls = run_worker(
        tmp_path,
        worker.source,
        {
            "env": env_for(worker),
            "requests": [
                request("GET", "/health"),
                request("POST", "/chat", {"prompt": HOSTILE}, token=TOKEN),
            ],
            "ai_queue": [{"json": {"response": {HOSTILE: HOSTILE}}}],
        },
    )
    assert replies[0].json()["worker"] == KEY
    assert replies[0].json()["template_sha256"] == module_sha256(worker.source)
    assert replies[1].status == 200
    inputs = calls["ai"][0]["inputs"]
    system, user = inputs["messages"]
    assert system == {"role": "system", "content": HOSTILE}
    assert json.dumps(system["content"]) == json.dumps(HOSTILE)
    assert user["content"] == HOSTILE
    assert json.dumps(inputs["response_format"], sort_keys=True) == json.dumps(
        {"type": "json_schema", "json_schema": schema}, sort_keys=True
    )
    assert replies[1].json()["response"] == {HOSTILE: HOSTILE}


def test_hostile_rag_system_prompt_reaches_the_model(tmp_path: Path) -> None:
    platform = make_platform(
        {
            KEY: {
                "kind": "rag",
                "index": "docs",
                "embedding_model": "@cf/baai/bge-small-en-v1.5",
                "system_prompt": HOSTILE,
            }
        }
    )
    worker = render(platform, KEY)
    replies, calls = run_worker(
        tmp_path,
        worker.source,
        {
            "env": env_for(worker),
            "ai_default": {"@cf/baai/bge-small-en-v1.5": {"embed": 4}},
            "requests": [
                request(
                    "POST",
                    "/documents",
                    {"documents": [{"id": "d", "text": HOSTILE, "metadata": {"m": HOSTILE}}]},
                    token=TOKEN,
                ),
                request("POST", "/query", {"question": HOSTILE}, token=TOKEN),
            ],
        },
    )
    assert [r.status for r in replies] == [200, 200]
    system = calls["ai"][-1]["inputs"]["messages"][0]
    assert system == {"role": "system", "content": HOSTILE}
    upsert = next(c for c in calls["vectorize"] if c["op"] == "upsert")
    assert all(v["metadata"]["m"] == HOSTILE for v in upsert["vectors"])


def test_hostile_custom_vars_and_module(tmp_path: Path) -> None:
    source = f"// {HOSTILE}\nexport default {{ fetch() {{ return new Response('x'); }} }};\n"
    (tmp_path / "legacy.js").write_bytes(source.encode())
    platform = make_platform(
        {
            KEY: {
                "kind": "custom",
                "main": "legacy.js",
                "bindings": {"vars": {"MODE": HOSTILE, "OTHER": "</script>"}},
            }
        }
    )
    worker = render(platform, KEY, base_dir=tmp_path)
    assert worker.source == source
    (files,) = worker_files({"golden": [worker]})
    config = wrangler_config(files)
    assert "\u2028" not in config
    body = "\n".join(line for line in config.split("\n") if not line.startswith("//"))
    assert json.loads(body)["env"]["golden"]["vars"] == {"MODE": HOSTILE, "OTHER": "</script>"}
    assert {b.name: b.text for b in worker.bindings} == {"MODE": HOSTILE, "OTHER": "</script>"}


def test_tojs_round_trips_any_text_through_node(tmp_path: Path) -> None:
    rng = random.Random(20251128)
    pool = [*list("\"'\\`$ {}<>/!-*\n\r\t\u2028\u2029\x00\x1f\x7fé日\ufeff"), "🎉", "</script>"]
    values: list[object] = [HOSTILE, "", {"<": ["</script>", 1.5, None, True]}]
    for _ in range(300):
        parts = [
            rng.choice(pool)
            if rng.random() < 0.6
            else chr(rng.choice([rng.randrange(0x20, 0xD800), rng.randrange(0xE000, 0x110000)]))
            for _ in range(rng.randrange(1, 30))
        ]
        values.append("".join(parts))
    module = tmp_path / "values.mjs"
    module.write_text(
        "export default [\n" + ",\n".join(tojs(v) for v in values) + "\n];\n", encoding="utf-8"
    )
    script = (
        f"const v = (await import({json.dumps(str(module))})).default;"
        "process.stdout.write(JSON.stringify(v));"
    )
    proc = subprocess.run(
        [node(), "--input-type=module", "-e", script], capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout.decode("utf-8")) == values
