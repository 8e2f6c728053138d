"""memhub's MCP server: tools, resources and a prompt over memhub's HTTP API.

``registry`` (the tool decorator), ``tools_*`` (one function per tool),
``hub`` (the HTTP adapter), ``connect`` (stdio / in-process / forwarding),
``server`` (the MCPServer), ``http`` (``/mcp`` in the server), ``install``
(client config files).
"""
