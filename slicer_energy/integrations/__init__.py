"""Integrations with printer hosts (OctoPrint); each imports its host only inside its package."""
