"""hpo-service: a distributed hyperparameter-search service on Ray."""

__version__ = "0.1.0"
