"""Real servers and small stand-ins that tests start on loopback (pytest plugins)."""
