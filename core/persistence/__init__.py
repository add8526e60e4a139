"""SQLAlchemy tables and sessions: the source of truth for every object."""
