"""The declarative REST source: a plain REST API described in sources.yaml, no code.

* :mod:`.spec` - the description (auth kind, streams, paginators, incremental cursor,
  primary key) and its validation into clear :class:`~interchange.errors.ConfigError`\\ s.
* :mod:`.paginators` - JSON cursor, link header, offset and page number paging.
* :mod:`.client` - :func:`~system_apis.rest.client.rest_client` (Vault-held bearer token
  or API key, or OAuth 2.0 client credentials; rate limit, retries, typed errors).
* :mod:`.streams` - :func:`~system_apis.rest.streams.read_stream` (pages with resume
  cursors, high-water marks, primary keys, drift fingerprints).
"""
