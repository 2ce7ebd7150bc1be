"""Cloudflare provisioning: the REST client and the Vectorize dynamic provider.

Submodules are imported on demand (``cfai.provision.rest``, ``cfai.provision.vectorize_index``)
so that importing this package loads neither pulumi nor pulumi_cloudflare.
"""
