"""``python -m service`` runs the ``hpo`` command line."""

from service.cli import main

main()
