"""Shared by every stage: typed config, atomic I/O, metrics, video reading, logging and
notebook runs. Every stage's DVC deps name this folder."""
