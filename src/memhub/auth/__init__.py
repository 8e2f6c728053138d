"""Authentication and admission: API keys, JWTs, rate limits. Fails closed."""
