"""The web tier: ``callscreen web``, its own process, serving the JSON API (and later the
portal's pages) over Starlette and uvicorn.

A thin face on :mod:`callscreen.ops`, like the CLI: ``auth`` reads credentials (bearer token or
session cookie, CSRF), ``throttle`` slows and locks repeated failed sign-ins, ``security`` sets
the headers and the body limit, ``schema`` checks the shape of JSON, ``api`` maps JSON to ops
calls through one route table, ``openapi`` builds the routes and the document from that table,
``app`` puts them together. No SQL and no permission decisions here. Nothing on the call path
(``app.py``, ``screening.py``, ``fastagi/``) imports this package.
"""
