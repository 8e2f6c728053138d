"""Route modules: ``seed`` (compatibility contracts) and ``v1_*`` (the designed API)."""
