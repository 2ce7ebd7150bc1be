"""Cloudflare provisioning: Pulumi components, the Vectorize dynamic provider, the REST client.

- ``cfai.provision.platform``: `Platform`, the component ``__main__.py`` builds for a stack;
- ``cfai.provision.gateway`` / ``worker``: `Gateway` (AiGateway), `AiWorker` (WorkersScript
  + workers.dev); ``cfai.provision.vectorize_index``: `VectorizeIndex` (dynamic provider);
- ``cfai.provision.rest``: the Cloudflare REST client (also used by `cfai local up`);
- ``cfai.provision.settings``: the config -> Cloudflare field mapping both targets share;
- ``cfai.provision.pulumi_cli``: `require_pulumi`, for the verbs that drive the Pulumi CLI.

Submodules are imported on demand so that importing this package loads neither pulumi nor
pulumi_cloudflare.
"""
