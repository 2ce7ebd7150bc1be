"""Worker script uploads as the REST client sends them (`CloudflareClient.workers`): the
upload's modules and metadata, what a script serves, and the comparison that decides
whether a deployed version already runs an upload.

Example::

    upload = script_upload(rendered, auth_token)        # cfai.provision.settings
    with CloudflareClient(base_url, token=token, account_id=account) as cf:
        live = cf.workers.current("acme-chat")
        version = cf.workers.version("acme-chat", live["version_id"], modules=True)
        if not same_version(version, upload):
            cf.workers.upload("acme-chat", upload)
"""

from __future__ import annotations

from cfai.provision._workers_api import (
    JS_MODULE,
    ScriptContent,
    ScriptModule,
    ScriptUpload,
    WorkersScriptsApi,
    modules_of,
    same_version,
)

__all__ = [
    "JS_MODULE",
    "ScriptContent",
    "ScriptModule",
    "ScriptUpload",
    "WorkersScriptsApi",
    "modules_of",
    "same_version",
]
