"""The Workers scripts API's limits and error codes, in one place.

Every error the emulated Workers scripts API raises is an `ApiError(status, code, message)`.
*Confirmed* codes and wordings were seen in public reports quoting live Cloudflare answers
(``This Worker does not exist on your account. (10007)``, ``binding DB of type d1 must have
a valid `id` specified [code: 10021]``) or in wrangler, which branches on them
(``packages/wrangler/src/deploy/deploy.ts``: 10007 and 10090 mean "no such Worker", 10021 a
validation or startup error whose text it source-maps, 10027 a script over the size limit,
10057 ``inherit binding '<name>' is invalid``). The others are *assumed*.

=====  ===========================================================  ======  =========
code   meaning                                                      HTTP    source
=====  ===========================================================  ======  =========
10007  no such Worker on the account                                404     confirmed
10021  invalid upload: metadata, bindings, modules, startup error   400     confirmed
10027  the Worker is over the size limit                            400     code conf.
10057  an ``inherit`` binding names nothing to inherit              400     confirmed
10026  no such version (or deployment) of the Worker                404     assumed
=====  ===========================================================  ======  =========
"""

from __future__ import annotations

from cfai.local.services.frontdoor import ApiError

# https://developers.cloudflare.com/workers/platform/limits/#worker-size (paid plan, after
# compression): what an upload may weigh once gzipped.
MAX_COMPRESSED = 10 * 1024 * 1024
# The request itself: room for a Worker at its uncompressed worst plus multipart framing.
MAX_UPLOAD_BODY = 64 * 1024 * 1024
# https://developers.cloudflare.com/workers/configuration/versions-and-deployments/gradual-deployments/
# ("at most 2 versions" is wrangler's `--max-versions` default, a server-side limit).
MAX_DEPLOYMENT_VERSIONS = 2
# Only the last 100 uploaded versions can be deployed (same page).
DEPLOYABLE_VERSIONS = 100
MAX_PER_PAGE = 100

NOT_FOUND = 10007
VALIDATION = 10021
TOO_LARGE = 10027
NO_VERSION = 10026
INHERIT = 10057


def script_not_found() -> ApiError:
    """Cloudflare's words for a script name the account does not have (confirmed)."""
    return ApiError(404, NOT_FOUND, "This Worker does not exist on your account.")


def invalid(message: str) -> ApiError:
    """A refused upload, deployment or setting (10021, as wrangler prints it)."""
    return ApiError(400, VALIDATION, message)


def bad_binding(name: str, kind: str, why: str) -> ApiError:
    """Cloudflare's shape for a binding it refuses: ``binding <NAME> of type <type> ...``."""
    return invalid(f"binding {name} of type {kind} {why}")


def too_large(size: int) -> ApiError:
    return ApiError(
        400,
        TOO_LARGE,
        f"Your Worker exceeded the size limit of {MAX_COMPRESSED // (1024 * 1024)} MiB "
        f"(it is {size / (1024 * 1024):.1f} MiB compressed)",
    )


def no_version(script: str, version_id: str) -> ApiError:
    return ApiError(404, NO_VERSION, f"Version {version_id} of Worker {script} does not exist")


def no_deployment(script: str, deployment_id: str) -> ApiError:
    return ApiError(
        404, NO_VERSION, f"Deployment {deployment_id} of Worker {script} does not exist"
    )


def bad_inherit(name: str) -> ApiError:
    """wrangler parses the name back with ``^inherit binding '(.+?)' is invalid``."""
    return ApiError(400, INHERIT, f"inherit binding '{name}' is invalid")
