"""`VectorizeIndex`: a Cloudflare Vectorize v2 index as a Pulumi resource.

No Pulumi/Terraform provider has a Vectorize index, so this is a dynamic provider over the
v2 REST API (`cfai.provision.rest.CloudflareClient`). Its type is
``pulumi-python:dynamic/cloudflare:VectorizeIndex``.

Semantics:

- create adopts an existing index of the same name when its dimensions, metric and
  description are the declared ones (and then reconciles its metadata indexes); any
  other difference fails, naming both configurations.
- ``account_id``, ``index_name``, ``dimensions``, ``metric`` and ``description`` replace
  the index (delete first, so the name can be reused): the v2 API cannot change any of
  them, not even the description. Replacing drops the vectors.
- ``metadata_indexes`` update in place (created/deleted to match). Vectors written before
  a metadata index exists are not filtered on it until re-upserted.
- delete treats 404 as done; refresh reports a deleted index as gone and detects drift.
- The API token is read when a method runs, from the stack config ``cloudflare:apiToken``
  or ``CLOUDFLARE_API_TOKEN``: it is never an input, an output or pickled state.
- The API root is the ``base_url`` input (the program passes the pulumi-cloudflare
  provider's ``cloudflare:baseUrl`` / ``CLOUDFLARE_BASE_URL``, so both talk to the same
  API), else that same config or variable, else ``CFAI_CLOUDFLARE_BASE_URL``, else
  Cloudflare's.

Engine-side property names are camelCase (``accountId``, ``indexName``,
``metadataIndexes``, ``createdOn``) and ``metadataIndexes`` travels in Cloudflare's own
list shape ``[{"propertyName", "indexType"}]`` so no user-chosen key is ever name-translated.

Example::

    docs = VectorizeIndex("docs", VectorizeIndexArgs(
        account_id=account_id, index_name="prod-docs", dimensions=768, metric="cosine",
        metadata_indexes={"source": "string"}))
    pulumi.export("index", docs.index_name)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.dynamic as dyn

from cfai.provision._vectorize_props import (
    REPLACES,
    TO_ENGINE,
    TO_PYTHON,
    differs,
    find_problems,
    inputs_of,
    mi_dict,
    mi_list,
    norm_description,
    outs,
    whole,
)
from cfai.provision.rest import DEFAULT_BASE_URL, CloudflareApiError, CloudflareClient
from cfai.provision.stack_config import BASE_URL_ENV, BASE_URL_KEY, TOKEN_ENV
from cfai.provision.stack_config import TOKEN_KEY as TOKEN_CONFIG

__all__ = ["VectorizeIndex", "VectorizeIndexArgs", "VectorizeIndexProvider"]

#: An older name of the API root's variable, still read after ``CLOUDFLARE_BASE_URL``.
CFAI_BASE_URL_ENV = "CFAI_CLOUDFLARE_BASE_URL"
DUPLICATE_NAME_CODE = 3002


def _default_client(base_url: str, token: str, account_id: str) -> CloudflareClient:
    return CloudflareClient(base_url, token=token, account_id=account_id)


# The factory the provider builds its client with; tests swap it for a MockTransport one.
# Module-level (not on the provider) so it is never pickled into state.
_new_client: Callable[[str, str, str], CloudflareClient] = _default_client


# -- the provider ---------------------------------------------------------------------------


class VectorizeIndexProvider(dyn.ResourceProvider):
    """CRUD of a Vectorize v2 index for the Pulumi engine.

    Pulumi pickles this class *by reference* (``cfai.provision.vectorize_index.VectorizeIndexProvider``)
    into every resource's state, and the provider process imports it on each later up,
    refresh and destroy: moving or renaming this class or module breaks existing stacks
    (their deletes included). The instance holds no client and no token; a token set by
    `configure` is dropped when pickled.
    """

    def __init__(self) -> None:
        super().__init__()
        self._configured_token: str | None = None
        self._configured_base_url: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self._configured_token = None
        self._configured_base_url = None

    def configure(self, req: dyn.ConfigureRequest) -> None:
        token = req.config.get(TOKEN_CONFIG)
        self._configured_token = str(token) if token else None
        base_url = req.config.get(BASE_URL_KEY)
        self._configured_base_url = str(base_url) if base_url else None

    # -- plumbing --------------------------------------------------------------------------

    def _client(self, props: Mapping[str, Any]) -> CloudflareClient:
        token = self._configured_token or os.environ.get(TOKEN_ENV)
        if not token:
            raise CloudflareApiError(
                401,
                None,
                f"no API token: set {TOKEN_ENV} or `pulumi config set --secret {TOKEN_CONFIG}`",
                "authenticate for",
                _resource(props),
            )
        base_url = (
            props.get("baseUrl")
            or self._configured_base_url
            or os.environ.get(BASE_URL_ENV)
            or os.environ.get(CFAI_BASE_URL_ENV)
            or DEFAULT_BASE_URL
        )
        return _new_client(str(base_url), token, str(props["accountId"]))

    # -- engine methods --------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        inputs = dict(news)
        if "dimensions" in inputs:
            inputs["dimensions"] = whole(inputs["dimensions"])
        if isinstance(inputs.get("metadataIndexes"), list | dict):
            inputs["metadataIndexes"] = mi_list(mi_dict(inputs["metadataIndexes"]))
        return dyn.CheckResult(inputs, [dyn.CheckFailure(p, r) for p, r in find_problems(inputs)])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        inputs = inputs_of(props)
        name = str(inputs["indexName"])
        with self._client(inputs) as cf:
            try:
                index = cf.vectorize.create_index(
                    name,
                    dimensions=int(inputs["dimensions"]),
                    metric=inputs["metric"],
                    description=norm_description(inputs.get("description")),
                )
            except CloudflareApiError as err:
                if not _is_duplicate(err):
                    raise
                index = cf.vectorize.get_index(name)
                _check_adoptable(err, index, inputs)
            _reconcile_metadata_indexes(cf, name, mi_dict(inputs.get("metadataIndexes")))
        return dyn.CreateResult(name, outs(inputs, index))

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        name = str(props.get("indexName") or id_)
        with self._client(props) as cf:
            try:
                index = cf.vectorize.get_index(name)
                indexes = cf.vectorize.list_metadata_indexes(name)
            except CloudflareApiError as err:
                if err.not_found:
                    return dyn.ReadResult(None, {})
                raise
        config = index.get("config") or {}
        actual = {
            **inputs_of(props),
            "indexName": index.get("name", name),
            "dimensions": config.get("dimensions"),
            "metric": config.get("metric"),
            "metadataIndexes": mi_list(mi_dict(indexes)),
        }
        description = norm_description(index.get("description"))
        if description is None:
            actual.pop("description", None)
        else:
            actual["description"] = description
        return dyn.ReadResult(name, outs(actual, index), inputs_of(actual))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        replaces = [k for k in REPLACES if differs(k, olds.get(k), news.get(k))]
        updates = [
            k for k in ("metadataIndexes", "baseUrl") if differs(k, olds.get(k), news.get(k))
        ]
        return dyn.DiffResult(
            changes=bool(replaces or updates),
            replaces=replaces,
            delete_before_replace=True,
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        inputs = inputs_of(news)
        name = str(inputs["indexName"])
        with self._client(inputs) as cf:
            _reconcile_metadata_indexes(cf, name, mi_dict(inputs.get("metadataIndexes")))
            index = cf.vectorize.get_index(name)
        return dyn.UpdateResult(outs(inputs, index))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        name = str(props.get("indexName") or id_)
        with self._client(props) as cf:
            try:
                cf.vectorize.delete_index(name)
            except CloudflareApiError as err:
                if not err.not_found:
                    raise


def _resource(props: Mapping[str, Any]) -> str:
    return f"vectorize_index '{props.get('indexName', '?')}'"


def _is_duplicate(err: CloudflareApiError) -> bool:
    return err.code == DUPLICATE_NAME_CODE or err.status == 409 or "duplicate_name" in err.message


def _check_adoptable(
    err: CloudflareApiError, index: Mapping[str, Any], inputs: Mapping[str, Any]
) -> None:
    """Adopt only an index identical in everything the API cannot change."""
    config = index.get("config") or {}
    have = (
        config.get("dimensions"),
        config.get("metric"),
        norm_description(index.get("description")),
    )
    want = (
        int(inputs["dimensions"]),
        inputs["metric"],
        norm_description(inputs.get("description")),
    )
    if have == want:
        return

    def show(c: tuple[Any, Any, Any]) -> str:
        return f"dimensions={c[0]} metric={c[1]} description={c[2]!r}"

    raise CloudflareApiError(
        err.status if err.status >= 400 else 409,
        err.code,
        f"an index of this name already exists with {show(have)}, declared {show(want)}; "
        "these cannot change: rename the index, or delete the existing one",
        "create",
        _resource(inputs),
    )


def _reconcile_metadata_indexes(cf: CloudflareClient, name: str, want: Mapping[str, str]) -> None:
    have = mi_dict(cf.vectorize.list_metadata_indexes(name))
    for prop in sorted(have):
        if want.get(prop) != have[prop]:
            cf.vectorize.delete_metadata_index(name, prop)
    for prop in sorted(want):
        if have.get(prop) != want[prop]:
            cf.vectorize.create_metadata_index(name, prop, want[prop])  # type: ignore[arg-type]


# -- the resource ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorizeIndexArgs:
    """What a `VectorizeIndex` is declared with.

    ``dimensions``: 32-1536, the embedding model's. ``metric``: ``cosine``,
    ``euclidean`` or ``dot-product``. ``metadata_indexes``: property -> ``string`` |
    ``number`` | ``boolean``, at most 10. ``base_url``: the API root (default: see the
    module docstring; ``https://api.cloudflare.com/client/v4`` when nothing says).
    """

    account_id: pulumi.Input[str]
    index_name: pulumi.Input[str]
    dimensions: pulumi.Input[int]
    metric: pulumi.Input[str]
    description: pulumi.Input[str] | None = None
    metadata_indexes: pulumi.Input[Mapping[str, pulumi.Input[str]]] = field(default_factory=dict)
    base_url: pulumi.Input[str] | None = None


class VectorizeIndex(dyn.Resource, module="cloudflare", name="VectorizeIndex"):
    """A Vectorize v2 index (see the module docstring for create/update/replace rules)."""

    account_id: pulumi.Output[str]
    index_name: pulumi.Output[str]
    dimensions: pulumi.Output[int]
    metric: pulumi.Output[str]
    description: pulumi.Output[str | None]
    metadata_indexes: pulumi.Output[dict[str, str]]
    base_url: pulumi.Output[str | None]
    created_on: pulumi.Output[str]
    modified_on: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        args: VectorizeIndexArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        declared = args.metadata_indexes
        known_metadata = isinstance(declared, Mapping) and not any(
            isinstance(v, pulumi.Output) for v in declared.values()
        )
        plain = {
            "indexName": args.index_name,
            "dimensions": args.dimensions,
            "metric": args.metric,
            "metadataIndexes": declared if known_metadata else None,
        }
        problems = find_problems(
            {k: v for k, v in plain.items() if not isinstance(v, pulumi.Output)}
        )
        if problems:
            details = "; ".join(f"{TO_PYTHON.get(p, p)}: {r}" for p, r in problems)
            raise ValueError(f"vectorize_index '{resource_name}': {details}")
        if known_metadata:
            metadata: Any = mi_list(mi_dict(declared))
        else:
            metadata = pulumi.Output.from_input(declared).apply(lambda m: mi_list(mi_dict(m)))
        props: dict[str, Any] = {
            "account_id": args.account_id,
            "index_name": args.index_name,
            "dimensions": args.dimensions,
            "metric": args.metric,
            "description": args.description,
            "metadata_indexes": metadata,
            "base_url": args.base_url,
            "created_on": None,
            "modified_on": None,
        }
        super().__init__(VectorizeIndexProvider(), resource_name, props, opts)
        # The engine keeps Cloudflare's list shape; users read the declared dict shape.
        listed = self.metadata_indexes
        self.metadata_indexes = listed.apply(mi_dict)

    def translate_input_property(self, prop: str) -> str:
        return TO_ENGINE.get(prop, prop)

    def translate_output_property(self, prop: str) -> str:
        return TO_PYTHON.get(prop, prop)
