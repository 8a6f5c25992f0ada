"""Tests of deploy/: the Helm chart (rendered with a real helm) and the container image recipe."""
