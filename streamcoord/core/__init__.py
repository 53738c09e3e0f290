"""The pure coordination core."""
