"""``python -m app`` runs the m23 command."""

from app.cli import main

raise SystemExit(main())
