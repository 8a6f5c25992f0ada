"""Tests of the study store: the contract suite over SQLite and PostgreSQL, and migrations."""
