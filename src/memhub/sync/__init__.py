"""The sync client: folders and live SQLite databases between machines."""
