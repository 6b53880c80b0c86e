"""`charlm serve`: trained models behind an OpenAI-compatible HTTP API and a writing page.

``rows`` keeps the model state of every open stream, ``engine`` steps them all together on one
thread (continuous batching), ``protocol`` holds the request and response shapes, ``app`` the
HTTP routes, ``guards`` the body limit and the API key, ``server`` runs it under uvicorn.
Imports fastapi: the CLI checks for the ``serve`` extra before it imports this package.
"""
