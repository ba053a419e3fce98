"""madoguchi queue server: the lobby's domain core (pure) and its shells (storage, websocket server)."""
