"""Third-party code kept in the package, unchanged but for import paths (see README.md)."""
