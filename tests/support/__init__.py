"""Helpers shared by the test packages: Pulumi's engine mocked (`pulumi_mocks`) and waiting
for a condition with a bound (`polling`). Imported as ``support.<module>`` (``tests/`` is on
the import path through ``tests/conftest.py``)."""
