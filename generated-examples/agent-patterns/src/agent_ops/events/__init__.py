"""Event types, the topic catalog and the serde that turns events into record bytes.

`models.py` and `catalog.py` are generated from spec.yml (edit the spec, not them); the rest is the template's
runtime, which each release replaces.
"""
