"""One module a ``params.yaml`` section: its frozen dataclasses, each key's default and range.

A stage depends on the sections it reads, not on the loader's list of every section
(:mod:`dfdc.core.fingerprint`): a key added to the ``robustness`` section leaves the faces stage
and the folds as they were. :mod:`dfdc.core.config` reads the file into all of them.
"""
