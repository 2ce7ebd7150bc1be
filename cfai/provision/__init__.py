"""Cloudflare provisioning: Pulumi components, the Vectorize dynamic provider, the REST client.

- ``cfai.provision.platform``: `Platform`, the component ``__main__.py`` builds for a stack;
- ``cfai.provision.gateway`` / ``worker``: `Gateway` (AiGateway), `AiWorker` (WorkersScript
  + workers.dev); ``cfai.provision.vectorize_index``: `VectorizeIndex` (dynamic provider);
  ``cfai.provision.finetune``: `Finetune` (dynamic provider: a LoRA adapter as a Workers AI
  finetune);
- ``cfai.provision.rest``: the Cloudflare REST client (also used by `cfai local up`) and
  the one place httpx's exceptions are caught (`send`, `fetch`);
- ``cfai.provision.settings``: the config -> Cloudflare field mapping both targets share;
- ``cfai.provision.pulumi_cli``: finding and running the Pulumi CLI, and a stack's outputs
  map (`stack_outputs`), for the verbs that drive it.

Submodules are imported on demand so that importing this package loads neither pulumi nor
pulumi_cloudflare.
"""
