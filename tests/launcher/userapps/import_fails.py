"""A module whose import raises (as a user's module with a missing setting would)."""

raise RuntimeError("DATABASE_URL is not set")
