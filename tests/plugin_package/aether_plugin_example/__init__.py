"""A third-party plug-in package for the plug-in contract test: one condition modality
(``depth_hint``) and one task (``depth_guided``), each in its own file, registered only through
the ``aether.modalities`` / ``aether.tasks`` entry points (see ``tests/test_plugin_contract.py``)."""
