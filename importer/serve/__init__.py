"""A small local HTTP server (uvicorn underneath) with its own plain request and answer types,
used by the sign-in's callback, the sandbox and the page."""
