"""The built-in contract checks, one module per worker kind and per resource.

Collected only when the cfai plugin has an outputs map (``--cfai-outputs``).
"""
