"""An emulator process of its own for the tests of the emulator's surface (its OpenAPI
document, hostile inputs, generated requests), started from a module-scoped fixture:

    @pytest.fixture(scope="module")
    def emulator(tmp_path_factory):
        with running_emulator(tmp_path_factory.mktemp("emulator")) as running:
            yield running
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import yaml
from support.stack import local_stack

from cfai.config import load_file
from cfai.local.ports import free_port
from cfai.local.processes import spawn, stop
from cfai.local.provisioning import provision
from cfai.local.services.frontdoor import (
    BINDING_HEADER,
    ERROR_SCHEMAS,
    BindingKey,
    BindingScope,
    Shape,
)
from cfai.provision.rest import CloudflareClient
from cfai.provision.scripts import ScriptModule, ScriptUpload

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Emulator:
    url: str
    token: str
    account: str
    key: BindingKey
    pid: int
    state: Path
    index: str
    gateway: str
    finetune: str
    script: str

    @property
    def api(self) -> str:
        return f"{self.url}/client/v4/accounts/{self.account}"

    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def binding(self, kind: str) -> dict[str, str]:
        index = self.index if kind == "vectorize" else None
        return {BINDING_HEADER: self.key.mint(BindingScope(kind, "fuzz", index))}


@contextlib.contextmanager
def running_emulator(state: Path) -> Iterator[Emulator]:
    """An emulator process of its own, state in `state` (removed afterwards), with the
    local stack's gateway (no rate limit), index and finetune provisioned through its REST
    API, and a Workers script uploaded (stored and deployed; without workerd it does not
    run)."""
    data = local_stack(state)
    del data["gateways"]["main"]["rate_limit"]
    (state / "platform.yaml").write_text(yaml.safe_dump(data))
    declaration = load_file(state / "platform.yaml")
    port, token = free_port(), "surface-token"
    env = {
        "CFAI_EMULATOR_TOKEN": token,
        "CFAI_EMULATOR_ACCOUNT": declaration.account_id,
        "CFAI_EMULATOR_STATE": str(state),
    }
    argv = [sys.executable, "-m", "cfai.local.emulator", "--port", str(port)]
    pid = spawn(argv, cwd=state, log=state / "emulator.log", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/__cfai/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (state / "emulator.log").read_text()
            time.sleep(0.05)
        provision(declaration, f"{url}/client/v4", token, lambda _: None)
        module = b"export default { fetch() { return new Response('ok'); } };"
        with CloudflareClient(
            f"{url}/client/v4", token=token, account_id=declaration.account_id
        ) as cf:
            cf.workers.upload(
                "fuzz-script",
                ScriptUpload(
                    "index.js",
                    (ScriptModule("index.js", "application/javascript+module", module),),
                    compatibility_date="2025-01-01",
                ),
            )
        yield Emulator(
            url=url,
            token=token,
            account=declaration.account_id,
            key=BindingKey.read(state),
            pid=pid,
            state=state,
            index=declaration.physical_name("docs"),
            gateway=declaration.physical_name("main"),
            finetune=declaration.finetune_name("tone", state),
            script="fuzz-script",
        )
    finally:
        stop(pid)
        shutil.rmtree(state, ignore_errors=True)


def assert_refusal(r: httpx.Response, shape: Shape) -> None:
    """A 4xx, JSON exactly, in `shape`'s error body."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json", r.text[:300]
    jsonschema.validate(r.json(), ERROR_SCHEMAS[shape])


def tracebacks(emulator: Emulator) -> str:
    log = (emulator.state / "emulator.log").read_text()
    return log[log.find("Traceback") :][:3000] if "Traceback" in log else ""


def client_port(r: httpx.Response) -> int:
    """The local port of the connection `r` came on (a new one: the last was dropped)."""
    return int(r.extensions["network_stream"].get_extra_info("client_addr")[1])
